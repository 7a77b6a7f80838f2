"""The CLI's HTTP client to the management API at $SUPERCHECK_URL/function/api, as $SUPERCHECK_API_KEY.

Every failure of the platform (unreachable, 401/403, 5xx) becomes a PlatformError (exit 3); any other 4xx an
ApiRefused naming the API's field, so a command never sees a raw transport error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from shared.cli import environment
from shared.cli.exits import ApiRefused, PlatformError

DEFAULT_URL = "http://127.0.0.1:8080"
API_PREFIX = "/function/api"
PAGE_LIMIT = 100  # the API's largest page


class ApiClient:
    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 60.0):
        self.url = (url or environment.get("SUPERCHECK_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else environment.get("SUPERCHECK_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers["User-Agent"] = "supercheck-cli"
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise PlatformError(
                f"cannot reach the server at {self.url}: {type(error).__name__}: {error}"
            ) from None
        return _answer(response, method, path)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, **params: Any) -> Iterator[dict]:
        """Every item of a paginated list ({data, pagination})."""
        page = 1
        while True:
            answer = self.get(path, page=page, limit=PAGE_LIMIT, **params)
            yield from answer["data"]
            if not answer["pagination"]["hasNextPage"]:
                return
            page += 1


def _error_of(response: httpx.Response) -> tuple[str, str, str | None]:
    try:
        error = response.json()["error"]
        return error.get("code", ""), error.get("message", ""), error.get("field")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.text[:200], None


def _answer(response: httpx.Response, method: str, path: str) -> Any:
    if response.status_code < 400:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PlatformError(
                f"{method} {path}: the server answered {response.status_code} without JSON"
            ) from None
    code, message, field = _error_of(response)
    if response.status_code in (401, 403):
        raise PlatformError(
            f"authentication failed ({response.status_code}): {message or code}; check SUPERCHECK_API_KEY"
        )
    if response.status_code >= 500:
        raise PlatformError(f"{method} {path}: server error {response.status_code}: {message or code}")
    raise ApiRefused(response.status_code, code, message, field)
