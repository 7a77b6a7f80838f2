"""dashboard-baseline (bench only): serves the static pages bench/dashboard.py wrote into BENCH_BASELINE_PAGES,
through the same gateway and process model as the dashboard, so a page's cost beyond moving its bytes shows."""

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

_loaded: dict[
    str, bytes
] = {}  # the pages are written after the stack starts, so they are read on first request


async def handle(request: Request) -> Response:
    folder = Path(os.environ["BENCH_BASELINE_PAGES"])
    name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if name not in _loaded:
        page = folder / name
        if not name or page.parent != folder or not page.is_file():
            return Response("no such page", status_code=404)
        _loaded[name] = page.read_bytes()
    return HTMLResponse(_loaded[name], headers={"Cache-Control": "no-store"})
