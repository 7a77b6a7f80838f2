"""The keyless `status` function as one Starlette router: pages by slug or by custom domain (Host), their feeds,
badges in Uptime Kuma's and Gatus' URL shapes, and the static files. Every reply is made through the cache
(shared/status/cache.py) and carries an ETag and Cache-Control; If-None-Match answers 304."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from shared.assets import LONG_CACHE
from shared.rules import badges
from shared.rules.status_page import duration_hours
from shared.settings import get_settings
from shared.status import feeds, public
from shared.status.cache import (
    FRESH_SECONDS,
    STALE_SECONDS,
    ChangeWatcher,
    RenderCache,
    Rendered,
    SharedCopies,
)
from shared.status.render import (
    BASE_PATH,
    CATALOGUE,
    CONTENT_SECURITY_POLICY,
    Links,
    render_history,
    render_not_found,
    render_page,
)

CACHE = RenderCache(shared=SharedCopies(keep_seconds=FRESH_SECONDS + STALE_SECONDS))
WATCHER = ChangeWatcher(CACHE)
CACHE_CONTROL = f"public, max-age={FRESH_SECONDS:g}, stale-while-revalidate={STALE_SECONDS:g}"
HTML = "text/html; charset=utf-8"
SVG = "image/svg+xml; charset=utf-8"
JSON = "application/json"

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]


class PagePath(BaseModel):
    slug: Slug


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1, le=10_000)


class BadgePath(BaseModel):
    """A monitor's badge: the monitor id (Kuma's <monitorId>, and what we take as Gatus' <key>), an optional
    duration such as 24h, 7d, 30d or a number of hours."""

    model_config = ConfigDict(extra="forbid")

    monitor_id: uuid.UUID
    duration: str = "24h"

    @field_validator("duration")
    @classmethod
    def _known_duration(cls, value: str) -> str:
        if duration_hours(value) is None:
            raise ValueError("a duration such as 1h, 24h, 7d, 30d or 90d (at most 90 days)")
        return value

    @property
    def hours(self) -> int:
        return duration_hours(self.duration) or 24


_HOST = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")


class HostHeader(BaseModel):
    """The name a reader asked for: X-Forwarded-Host (set by the OpenFaaS gateway or a reverse proxy) before
    Host, lower-cased, without its port."""

    host: str = Field(max_length=300)

    @field_validator("host")
    @classmethod
    def _name_only(cls, value: str) -> str:
        name = value.split(",")[0].strip().lower()
        name = name.rsplit(":", 1)[0] if not name.startswith("[") else name
        if not _HOST.match(name):
            raise ValueError("not a host name")
        return name


def request_host(request: Request) -> str | None:
    try:
        raw = request.headers.get("x-forwarded-host") or request.headers.get("host") or ""
        return HostHeader(host=raw).host
    except ValidationError:
        return None


# --------------------------------------------------------------------------------------------- replies


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def reply(request: Request, rendered: Rendered, *, extra_headers: dict | None = None) -> Response:
    """The cached copy as a response: 304 when the reader holds it already, gzipped when it accepts that."""
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        **(extra_headers or {}),
    }
    if rendered.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if rendered.status == 200 and _etag_matches(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    body = rendered.body
    if "gzip" in request.headers.get("accept-encoding", "") and len(body) > 1024:
        body, headers["Content-Encoding"] = rendered.gzipped, "gzip"
    return Response(body, status_code=rendered.status, media_type=rendered.media_type, headers=headers)


def plain_not_found(links: Links, what: str) -> Rendered:
    return Rendered(render_not_found(links, what).encode(), HTML, status=404)


def invalid(message: str) -> Response:
    return Response(
        json.dumps({"error": {"code": "validation_error", "message": message}}),
        status_code=400,
        media_type=JSON,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def cached(key: str, make: Callable[[], Awaitable[Rendered]]) -> Rendered:
    WATCHER.ensure_running()
    return await CACHE.get(key, make)


# ------------------------------------------------------------------------------------------------- pages


async def _page(request: Request, slug: str, links: Links) -> Response:
    async def make() -> Rendered:
        page = await public.read_page(slug)
        if page is None:
            return plain_not_found(links, "There is no published status page at this address.")
        return Rendered(
            render_page(page, links).encode(), HTML, monitor_ids=frozenset(m.id for m in page.monitors)
        )

    return reply(request, await cached(f"page:{slug}:{links.page}", make))


async def page_by_slug(request: Request) -> Response:
    try:
        slug = PagePath(slug=request.path_params["slug"]).slug
    except ValidationError:
        return reply(
            request, plain_not_found(Links.for_gateway(), "A status page's address is its slug, e.g. /acme.")
        )
    return await _page(request, slug, Links.for_slug(slug))


async def slug_of_host(request: Request) -> str | None:
    host = request_host(request)
    if host is None:
        return None

    async def make() -> Rendered:
        return Rendered(json.dumps(await public.custom_domains()).encode(), JSON)

    domains = json.loads((await cached("domains", make)).body)
    return domains.get(host)


async def page_by_host(request: Request) -> Response:
    slug = await slug_of_host(request)
    if slug is None:
        return reply(
            request,
            plain_not_found(
                Links.for_domain(), "No status page is configured for this domain; pages live at /<slug>."
            ),
        )
    return await _page(request, slug, Links.for_domain())


async def _history(request: Request, slug: str, links: Links) -> Response:
    try:
        query = HistoryQuery.model_validate(dict(request.query_params))
    except ValidationError as error:
        first = error.errors()[0]
        return invalid(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")

    async def make() -> Rendered:
        history = await public.read_history(slug, query.page)
        if history is None:
            return plain_not_found(links, "There is no published status page at this address.")
        return Rendered(render_history(history, links).encode(), HTML)

    return reply(request, await cached(f"history:{slug}:{links.page}:{query.page}", make))


async def history_by_slug(request: Request) -> Response:
    try:
        slug = PagePath(slug=request.path_params["slug"]).slug
    except ValidationError:
        return reply(request, plain_not_found(Links.for_gateway(), "No such status page."))
    return await _history(request, slug, Links.for_slug(slug))


async def history_by_host(request: Request) -> Response:
    slug = await slug_of_host(request)
    if slug is None:  # not a custom domain: /history is then the page whose slug is "history"
        return await _page(request, "history", Links.for_slug("history"))
    return await _history(request, slug, Links.for_domain())


# ------------------------------------------------------------------------------------------------- feeds

FEED_KINDS = {
    "feed.atom": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
    "maintenance.ics": "text/calendar; charset=utf-8",
}


async def _feed(request: Request, slug: str, links: Links, kind: str) -> Response:
    """Feeds name absolute URLs: the configured public base URL for /<slug>, the page's own domain for a custom
    domain. Never the request's Host as such, which would let any Host header add a cache entry."""
    if links.prefix:
        origin = get_settings().public_base_url.rstrip("/")
    else:
        scheme = "http" if request.headers.get("x-forwarded-proto") == "http" else "https"
        origin = f"{scheme}://{request_host(request)}"
    page_url = f"{origin}{links.page}" if links.page else f"{origin}/"
    feed_url = f"{origin}{links.feed(kind)}"

    async def make() -> Rendered:
        content = await public.read_feed(slug)
        if content is None:
            return plain_not_found(links, "There is no published status page at this address.")
        if kind == "feed.atom":
            body = feeds.atom(content, page_url, feed_url)
        elif kind == "feed.json":
            body = feeds.json_feed(content, page_url, feed_url)
        else:
            body = feeds.icalendar(content, page_url, datetime.now(UTC))
        return Rendered(body, FEED_KINDS[kind])

    return reply(request, await cached(f"feed:{kind}:{feed_url}", make))


async def feed_by_slug(request: Request) -> Response:
    try:
        slug = PagePath(slug=request.path_params["slug"]).slug
    except ValidationError:
        return reply(request, plain_not_found(Links.for_gateway(), "No such status page."))
    return await _feed(request, slug, Links.for_slug(slug), request.path_params["kind"])


async def feed_by_host(request: Request) -> Response:
    slug = await slug_of_host(request)
    if slug is None:
        return reply(
            request, plain_not_found(Links.for_domain(), "No status page is configured for this domain.")
        )
    return await _feed(request, slug, Links.for_domain(), request.url.path.rsplit("/", 1)[-1])


# ------------------------------------------------------------------------------------------------ badges

BadgeMaker = Callable[[public.BadgeFacts | None, BadgePath], badges.Badge]


def _status_badge(facts, path) -> badges.Badge:
    if facts is None:
        return badges.not_available("status")
    return badges.Badge("status", facts.status.label, badges.status_colour(facts.status.key))


def _uptime_badge(facts, path) -> badges.Badge:
    label = f"uptime {path.duration}"
    if facts is None:
        return badges.not_available(label)
    return badges.Badge(label, badges.uptime_text(facts.uptime), badges.uptime_colour(facts.uptime))


def _response_badge(facts, path) -> badges.Badge:
    label = f"response time {path.duration}"
    if facts is None or facts.mean_response_ms is None:
        return badges.not_available(label)
    ms = facts.mean_response_ms
    return badges.Badge(label, f"{ms:.0f} ms", badges.response_time_colour(ms))


def _certificate_badge(facts, path) -> badges.Badge:
    if facts is None or facts.certificate_days is None:
        return badges.not_available("cert expiry")
    days = facts.certificate_days
    text = "expired" if days <= 0 else f"{days} day" + ("" if days == 1 else "s")
    colour = "red" if days <= 7 else "orange" if days <= 14 else "yellow" if days <= 30 else "green"
    return badges.Badge("cert expiry", text, colour)


BADGES: dict[str, BadgeMaker] = {
    "status": _status_badge,
    "uptime": _uptime_badge,
    "response": _response_badge,
    "certificate": _certificate_badge,
}


def _badge_path(request: Request) -> BadgePath:
    values = {"monitor_id": request.path_params.get("monitor_id") or request.path_params.get("key")}
    if "duration" in request.path_params:
        values["duration"] = request.path_params["duration"]
    return BadgePath.model_validate(values)


def badge_route(kind: str, *, shields: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        try:
            path = _badge_path(request)
        except ValidationError as error:
            first = error.errors()[0]
            return invalid(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")

        async def make() -> Rendered:
            facts = await public.badge_facts(path.monitor_id, path.hours)
            badge = BADGES[kind](facts, path)
            ids = frozenset({path.monitor_id}) if facts else frozenset()
            if shields:
                return Rendered(json.dumps(badges.shields_endpoint(badge)).encode(), JSON, monitor_ids=ids)
            return Rendered(badges.badge_svg(badge).encode(), SVG, monitor_ids=ids)

        cors = {"Access-Control-Allow-Origin": "*"}
        return reply(
            request,
            await cached(f"badge:{kind}:{shields}:{path.monitor_id}:{path.hours}", make),
            extra_headers=cors,
        )

    return serve


async def response_chart(request: Request) -> Response:
    """Gatus' /response-times/<duration>/chart.svg: here the last 24 hours' hourly means as a sparkline."""
    from shared.dashboard import charts

    try:
        path = _badge_path(request)
    except ValidationError as error:
        return invalid(str(error.errors()[0]["msg"]))

    async def make() -> Rendered:
        facts = await public.badge_facts(path.monitor_id, path.hours)
        points = facts.hourly_response_ms if facts else []
        name = facts.name if facts else "N/A"
        return Rendered(
            str(charts.sparkline(points, label=f"{name}: response time, last 24 h")).encode(),
            SVG,
            monitor_ids=frozenset({path.monitor_id}) if facts else frozenset(),
        )

    return reply(request, await cached(f"chart:{path.monitor_id}", make))


async def endpoint_statuses(request: Request) -> Response:
    async def make() -> Rendered:
        found = await public.endpoint_statuses()
        body = [{"name": e.name, "group": e.group, "key": e.key, "results": e.results} for e in found]
        return Rendered(
            json.dumps(body).encode(), JSON, monitor_ids=frozenset(uuid.UUID(e.key) for e in found)
        )

    return reply(request, await cached("statuses", make), extra_headers={"Access-Control-Allow-Origin": "*"})


# --------------------------------------------------------------------------------------------- the router


async def static_file(request: Request) -> Response:
    asset = CATALOGUE.by_hashed_name(request.path_params["name"])
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        asset.content,
        media_type=asset.media_type,
        headers={"Cache-Control": LONG_CACHE, "X-Content-Type-Options": "nosniff"},
    )


KUMA = "/api/badge/{monitor_id}"
GATUS = "/api/v1/endpoints/{key}"


@lru_cache(maxsize=1)
def router() -> Router:
    async def not_found(scope, receive, send):
        response = reply(Request(scope), plain_not_found(Links.for_gateway(), "No such page."))
        await response(scope, receive, send)

    routes = [
        Route("/", page_by_host, methods=["GET"]),
        Route("/static/{name}", static_file, methods=["GET"]),
        Route(f"{KUMA}/status", badge_route("status"), methods=["GET"]),
        Route(f"{KUMA}/uptime", badge_route("uptime"), methods=["GET"]),
        Route(KUMA + "/uptime/{duration}", badge_route("uptime"), methods=["GET"]),
        Route(f"{KUMA}/ping", badge_route("response"), methods=["GET"]),
        Route(KUMA + "/ping/{duration}", badge_route("response"), methods=["GET"]),
        Route(f"{KUMA}/cert-exp", badge_route("certificate"), methods=["GET"]),
        Route("/api/v1/endpoints/statuses", endpoint_statuses, methods=["GET"]),
        Route(f"{GATUS}/health/badge.svg", badge_route("status"), methods=["GET"]),
        Route(f"{GATUS}/health/badge.shields", badge_route("status", shields=True), methods=["GET"]),
        Route(GATUS + "/uptimes/{duration}/badge.svg", badge_route("uptime"), methods=["GET"]),
        Route(GATUS + "/response-times/{duration}/badge.svg", badge_route("response"), methods=["GET"]),
        Route(GATUS + "/response-times/{duration}/chart.svg", response_chart, methods=["GET"]),
        *[Route(f"/{kind}", feed_by_host, methods=["GET"]) for kind in FEED_KINDS],
        Route("/history", history_by_host, methods=["GET"]),
        Route("/{slug}", page_by_slug, methods=["GET"]),
        Route("/{slug}/history", history_by_slug, methods=["GET"]),
        Route("/{slug}/{kind:str}", feed_by_slug_or_404, methods=["GET"]),
    ]
    return Router(routes=routes, default=not_found)


async def feed_by_slug_or_404(request: Request) -> Response:
    if request.path_params["kind"] not in FEED_KINDS:
        return reply(request, plain_not_found(Links.for_gateway(), "No such page."))
    return await feed_by_slug(request)


class StatusResponse(Response):
    """Hands the untouched ASGI request to the router, the prefix stripped when the function is called directly
    rather than through a gateway that strips it."""

    def __init__(self, request: Request):
        self.scope = {**request.scope, "path_params": {}}
        path = self.scope["path"]
        if path.startswith(BASE_PATH):
            self.scope["path"] = path.removeprefix(BASE_PATH) or "/"
        self.receive = request.receive

    async def __call__(self, scope, receive, send) -> None:
        await router()(self.scope, self.receive, send)
