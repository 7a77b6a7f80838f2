"""A local stand-in for the OpenFaaS gateway: /function/<name>/<path> is proxied to that function's process."""

from __future__ import annotations

import asyncio
import itertools
import json
import os

import aiohttp
from yarl import URL

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
        # As httpx's Timeout(timeout, connect=5): no bound on a whole exchange (an SSE stream lasts), the
        # timeout on waiting for a pooled connection and between reads, 5 s to connect.
        self.timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=5.0, sock_read=timeout)
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def _session(self) -> aiohttp.ClientSession:
        """aiohttp's client: its C parser costs a proxied request a fifth of httpx's CPU (bench/ping_ingest.py).
        One per event loop, made in the loop that uses it (a test may drive the app from several)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=500,
                    # Under a second: functions-framework's gunicorn closes an idle connection after 2 s (its
                    # keepalive), and a pooled connection reused as it closes fails the request with a 502 (seen
                    # in a browser test).
                    keepalive_timeout=1.0,
                ),
                timeout=self.timeout,
                auto_decompress=False,  # the body travels as the function encoded it, with its Content-Encoding
                # a proxy adds nothing the client did not send (no User-Agent, Accept, Content-Type of its own)
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies are the browser's, never the gateway's
                max_field_size=16384,  # h11's (httpx's) bound on a header, over aiohttp's 8 KB
            )
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _read_body(receive) -> bytes:
        chunks = []  # joined once: a large upload (a synthetic test's bundle) is not copied per chunk
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

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
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_BY_HOP
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
            # encoded=True: yarl would otherwise normalize the path's percent-encoding
            response = await self._session().request(
                scope["method"],
                URL(url, encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,  # a redirect is the client's to follow (sign-in's 303 sets its cookie)
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            return await self._json(
                send, 502, {"error": {"code": "bad_gateway", "message": f"{name}: {type(error).__name__}"}}
            )
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        # raw_headers: each header as received, so two Set-Cookie headers stay two
                        (k, v)
                        for k, v in response.raw_headers
                        if k.decode("latin-1").lower() not in HOP_BY_HOP
                    ],
                }
            )
            # iter_any: each chunk as it arrives, so a stream (the dashboard's live events) is never buffered
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release()

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
