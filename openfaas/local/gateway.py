"""A local stand-in for the OpenFaaS gateway: /function/<name>/<path> is proxied to that function's process."""

from __future__ import annotations

import itertools
import json
import os

import httpx

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


class Gateway:
    """A raw ASGI app so responses (including SSE) stream through unbuffered."""

    def __init__(self, upstreams: dict[str, str | list[str]], timeout: float = 330.0):
        """upstreams: each function's base URL, or its replicas' URLs, which requests take in turn (as the
        OpenFaaS gateway spreads them over a function's pods)."""
        self.upstreams = {
            name: itertools.cycle([urls] if isinstance(urls, str) else urls)
            for name, urls in upstreams.items()
        }
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            # Under a second: functions-framework's gunicorn closes an idle connection after 2 s (its keepalive),
            # and a pooled connection reused as it closes fails the request with a 502 (seen in a browser test).
            limits=httpx.Limits(max_connections=500, keepalive_expiry=1.0),
        )

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _read_body(receive) -> bytes:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        path = scope["path"]
        if path == "/healthz":
            return await self._json(send, 200, {"status": "ok"})
        if path == "/system/functions":
            return await self._json(send, 200, [{"name": name} for name in sorted(self.upstreams)])
        if not path.startswith("/function/"):
            return await self._json(
                send, 404, {"error": {"code": "not_found", "message": "use /function/<name>"}}
            )
        name, _, rest = path.removeprefix("/function/").partition("/")
        replicas = self.upstreams.get(name)
        upstream = next(replicas) if replicas is not None else None
        if upstream is None:
            return await self._json(
                send, 404, {"error": {"code": "not_found", "message": f"no function '{name}'"}}
            )
        body = await self._read_body(receive)
        headers = [
            (k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in HOP_BY_HOP
        ]
        # As the OpenFaaS gateway does: the Host a client asked for travels on as X-Forwarded-Host unless a
        # proxy in front set it already (the status function finds custom domains by it).
        host = next((v.decode() for k, v in scope["headers"] if k == b"host"), "")
        if host and not any(k.lower() == "x-forwarded-host" for k, _ in headers):
            headers.append(("X-Forwarded-Host", host))
        # Forward the path exactly as the client sent it (percent-encoding intact), minus /function/<name>.
        raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1")
        forwarded = raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else ""
        url = f"{upstream}/{forwarded}" + (
            f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else ""
        )
        try:
            request = self.client.build_request(scope["method"], url, headers=headers, content=body)
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as error:
            return await self._json(
                send, 502, {"error": {"code": "bad_gateway", "message": f"{name}: {type(error).__name__}"}}
            )
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode(), v.encode())
                        # multi_items: items() would join two Set-Cookie headers into one, breaking both
                        for k, v in response.headers.multi_items()
                        if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    @staticmethod
    async def _json(send, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def app_from_env() -> Gateway:
    """uvicorn factory: GATEWAY_UPSTREAMS is a JSON object {function name: base URL or list of them}."""
    return Gateway(json.loads(os.environ["GATEWAY_UPSTREAMS"]))
