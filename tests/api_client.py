"""Calls a function's real functions-framework ASGI app in-process (the api's, or another's), as a given API key."""

from __future__ import annotations

import httpx
from functions_framework.aio import create_asgi_app

from openfaas.local.stack import PROJECT_ROOT

_APPS: dict[str, object] = {}


def function_app(function: str = "api"):
    """functions/<folder>/main.py's app, for the OpenFaaS name (check-http) or the folder (check_http)."""
    folder = function.replace("-", "_")
    if folder not in _APPS:
        _APPS[folder] = create_asgi_app(
            target="handle", source=str(PROJECT_ROOT / f"functions/{folder}/main.py")
        )
    return _APPS[folder]


def api_app():
    return function_app("api")


class ApiClient:
    def __init__(self, aio, key: str | None, function: str = "api"):
        self.aio = aio
        self.key = key
        self.function = function

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"

        async def go():
            transport = httpx.ASGITransport(app=function_app(self.function))
            async with httpx.AsyncClient(
                transport=transport, base_url=f"http://gateway/function/{self.function}", timeout=60
            ) as client:
                return await client.request(method, path, headers=headers, **kwargs)

        return self.aio.run(go())

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)
