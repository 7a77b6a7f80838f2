"""The dashboard reaches the API in process, through the API's own router, for the signed-in key's principal.

Pages read through `ApiClient` and the browser's scripts write through `forward` (/function/dashboard/api/...),
so every validation rule, error message, project scope and audit row is the API's, written once.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from shared.api.app import serve
from shared.api.framework import PRINCIPAL_SCOPE_KEY
from shared.auth import Principal
from shared.errors import ApiError

# Headers the API must not see from the browser: the session is the credential, already turned into a principal.
_DROPPED_HEADERS = {b"authorization", b"cookie", b"x-csrf-token"}


class ApiClient:
    """The API, as the signed-in key would call it with curl, minus the HTTP hop."""

    def __init__(self, principal: Principal):
        self.principal = principal

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """The decoded JSON reply; an error reply is raised as the ApiError the API built."""
        query = {key: value for key, value in (params or {}).items() if value not in (None, "")}
        payload = b"" if body is None else json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(query, doseq=True).encode(),
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 0),
            "server": ("dashboard", 80),
            PRINCIPAL_SCOPE_KEY: self.principal,
        }
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        status, chunks = 500, []

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await serve(scope, receive, send)
        raw = b"".join(chunks)
        data = json.loads(raw) if raw else None
        if status >= 400:
            error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
            raise ApiError(
                status, error.get("code", "error"), error.get("message", f"HTTP {status}"), error.get("field")
            )
        return data


class ForwardedResponse(Response):
    """The browser's call to /function/dashboard/api/<path>, handed to the API router as <path> for the
    session's principal; the reply (SSE included) streams back untouched."""

    def __init__(self, request: Request, api_path: str, principal: Principal):
        headers = [(k, v) for k, v in request.scope["headers"] if k.lower() not in _DROPPED_HEADERS]
        self.scope = {
            **request.scope,
            "path": api_path,
            "raw_path": api_path.encode(),
            "path_params": {},
            "headers": headers,
            PRINCIPAL_SCOPE_KEY: principal,
        }
        self.receive = request.receive

    async def __call__(self, scope, receive, send) -> None:
        await serve(self.scope, self.receive, send)
