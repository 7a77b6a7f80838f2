"""What every dashboard page shares: the templates, the signed-in context, the page table and its guards.

A page is an async function of a PageContext registered with `@page(path)`; it reads through `ctx.api` (the API
in process, shared/dashboard/bridge.py) and answers `ctx.render(template, ...)`. Pages never query the database
themselves: what they show is what the API answers for the same key.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shared.auth import Principal
from shared.dashboard import assets, charts
from shared.dashboard.bridge import ApiClient
from shared.dashboard.session import SESSION_COOKIE, Session, decode
from shared.errors import ApiError

log = logging.getLogger("supercheck.dashboard")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
BASE_PATH = "/function/dashboard"

# Scripts only from our own files; styles may sit in attributes (chart bar heights), never fetched from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# Navigation: (label, path); pages mark theirs with `nav="..."`.
NAVIGATION = (
    ("Monitors", "/"),
    ("Regions", "/regions"),
    ("Alerts", "/alerts"),
    ("Notifications", "/notifications"),
    ("Maintenance", "/maintenance"),
    ("Synthetic tests", "/synthetic"),
    ("Variables", "/variables"),
    ("API keys", "/api-keys"),
    ("Audit log", "/audit-log"),
)


def display_status(monitor: dict) -> str:
    """The status a person reads: a paused monitor is paused whatever its last run said."""
    return "paused" if not monitor.get("enabled", True) else monitor.get("status") or "unknown"


def _sparkline_of(summary: dict, name: str):
    """A list row's 24 hourly averages (GET /monitors?include=summary) as a sparkline."""
    points = [(datetime.fromisoformat(point["t"]), point["ms"]) for point in summary.get("sparkline", ())]
    return charts.sparkline(points, label=f"{name}: response time, last 24 h")


def _relative_time(value: str | None) -> str:
    if not value:
        return "never"
    moment = datetime.fromisoformat(value)
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        base=BASE_PATH,
        asset=lambda name: assets.url_of(name, BASE_PATH),
        navigation=NAVIGATION,
        display_status=display_status,
        sparkline_of=_sparkline_of,
    )
    env.filters["ago"] = _relative_time
    return env


class QueryValues(dict):
    """Query parameters as given; one not given reads as "" in a template (`filters.status`), which is what a
    form field shows for it, while StrictUndefined still catches every other misspelt name."""

    def __missing__(self, name: str) -> str:
        return ""


@dataclass
class PageContext:
    request: Request
    session: Session
    principal: Principal
    api: ApiClient
    started: float = field(default_factory=time.perf_counter)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = environment().get_template(template).render(csrf_token=self.session.csrf_token, **values)
        return page_response(html, status, self.started)

    def query(self, *names: str) -> QueryValues:
        """The named query parameters the request carries, for passing on to the API as they are."""
        params = self.request.query_params
        return QueryValues({name: params[name] for name in names if params.get(name)})


def page_response(html: str, status: int, started: float) -> HTMLResponse:
    elapsed_ms = (time.perf_counter() - started) * 1000
    headers = {**PAGE_HEADERS, "Server-Timing": f"app;dur={elapsed_ms:.1f}"}
    return HTMLResponse(html, status_code=status, headers=headers)


def render_public(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page shown before sign-in (the sign-in form, errors)."""
    html = environment().get_template(template).render(**values)
    return page_response(html, status, time.perf_counter())


PageHandler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Page:
    path: str
    handler: PageHandler
    methods: tuple[str, ...] = ("GET",)


PAGES: list[Page] = []


def page(path: str, methods: tuple[str, ...] = ("GET",)):
    def register(handler: PageHandler) -> PageHandler:
        PAGES.append(Page(path, handler, methods))
        return handler

    return register


async def signed_in(request: Request) -> tuple[Session, Principal] | None:
    """The request's session and its key's principal, or None (no cookie, a bad one, or a revoked key)."""
    session = decode(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    from shared import auth, db

    async with db.transaction() as conn:
        principal = await auth.principal_of_key_id(conn, session.api_key_id)
    if principal is None or principal.project_id != session.project_id:
        return None
    return session, principal


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = BASE_PATH + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    from urllib.parse import quote

    return RedirectResponse(f"{BASE_PATH}/login?next={quote(target)}", status_code=303, headers=PAGE_HEADERS)


async def run_page(spec: Page, request: Request) -> Response:
    started = time.perf_counter()
    found = await signed_in(request)
    if found is None:
        if request.headers.get("x-requested-with") == "fetch":
            return page_response("signed out", 401, started)
        return sign_in_redirect(request)
    session, principal = found
    ctx = PageContext(request, session, principal, ApiClient(principal), started)
    try:
        return await spec.handler(ctx, **request.path_params)
    except ApiError as error:
        return ctx.render("error.html", status=error.status, error=error)
    except Exception:
        log.exception("unhandled error in dashboard page %s", spec.path)
        failure = ApiError(500, "internal_error", "internal error; see the dashboard function's log")
        return ctx.render("error.html", status=500, error=failure)


def as_uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
