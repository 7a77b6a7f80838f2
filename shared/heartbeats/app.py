"""The ping function's HTTP edge: a request in, a short reply out (Healthchecks' plain "OK", Kuma's JSON).
Errors never echo the URL: it holds the token."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from shared.heartbeats.intake import receive_ping
from shared.heartbeats.ping import MAX_BODY_BYTES, PingRefused, parse_ping

log = logging.getLogger("supercheck.ping")
ALLOWED_METHODS = ("GET", "HEAD", "POST")


async def _body(request: Request) -> bytes:
    """The first 100 KB of the body (the rest is read and dropped, so the connection stays usable)."""
    if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
        return b""  # HTTP/1.1: no body (a cron job's GET), so nothing to wait for
    kept = b""
    async for chunk in request.stream():
        if len(kept) < MAX_BODY_BYTES:
            kept += chunk[: MAX_BODY_BYTES - len(kept)]
    return kept


def _reply(request: Request, status: int, text: str, kuma: bool) -> Response:
    if kuma:
        body = {"ok": True} if status == 200 else {"ok": False, "msg": text}
        response: Response = JSONResponse(body, status_code=status)
    else:
        response = PlainTextResponse(text, status_code=status)
    if request.method == "HEAD":
        response.body = b""
        response.headers["content-length"] = "0"
    return response


async def handle_ping(request: Request) -> Response:
    # the scope's own path and only the header a ping reads: building request.url, the query and every header
    # was a sixth of the ping function's own code's time (py-spy)
    path = request.scope["path"]
    kuma = path.startswith("/api/push/")
    if request.method not in ALLOWED_METHODS:
        return _reply(request, 405, "method not allowed: use GET, HEAD or POST", kuma)
    if path.rstrip("/") == "/health":
        return _reply(request, 200, "OK", kuma=False)  # the function is served; touches nothing
    try:
        query = dict(request.query_params) if request.scope["query_string"] else {}
        key = request.headers.get("idempotency-key")
        headers = {"idempotency-key": key} if key is not None else {}
        ping = parse_ping(path, query, headers, await _body(request))
        receipt = await receive_ping(ping)
    except PingRefused as refused:
        return _reply(request, refused.status, refused.text, kuma)
    except Exception as error:  # logged by type only: a message could carry the URL, and with it the token
        log.error("ping failed: %s", type(error).__name__)
        return _reply(request, 500, "internal error; see the function's log", kuma)
    return _reply(request, 200, "OK" if receipt.counted else "OK (already counted)", kuma)
