"""Calls the api function's real functions-framework ASGI app in-process, as a given API key."""

from __future__ import annotations

import httpx
from functions_framework.aio import create_asgi_app

from openfaas.local.stack import PROJECT_ROOT

_APP = None


def api_app():
    global _APP
    if _APP is None:
        _APP = create_asgi_app(target="handle", source=str(PROJECT_ROOT / "functions/api/main.py"))
    return _APP


class ApiClient:
    def __init__(self, aio, key: str | None):
        self.aio = aio
        self.key = key

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"

        async def go():
            transport = httpx.ASGITransport(app=api_app())
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway/function/api"
            ) as client:
                return await client.request(method, path, headers=headers, **kwargs)

        return self.aio.run(go())

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)
