"""Status pages as HTML: one template per page, the dashboard's charts (daily bars, sparkline) and the same
hashed static files, incidents' Markdown rendered sanitised. Pure given a PublicPage: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from shared.assets import AssetCatalogue
from shared.dashboard import charts
from shared.dashboard.assets import STATIC_DIR as DASHBOARD_STATIC
from shared.rules.badges import uptime_text
from shared.rules.status_page import banner
from shared.status.public import IncidentHistory, PublicIncident, PublicMonitor, PublicPage

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
# The charts' stylesheet and the icon are the dashboard's own files, served here under the same hashed names.
CATALOGUE = AssetCatalogue(DASHBOARD_STATIC / "charts.css", DASHBOARD_STATIC / "favicon.svg", STATIC_DIR)
BASE_PATH = "/function/status"

# Scripts: none. Styles only from our own files (chart bars set inline heights); nothing from another host.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
INCIDENT_STATUS_LABELS = {
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
}


@dataclass(frozen=True)
class Links:
    """Where a rendered page points: under /function/status/<slug> through the gateway, or at the root of its
    custom domain (the reverse proxy maps / to /function/status/)."""

    prefix: str  # before /static/... and /api/...
    page: str  # the page itself

    @classmethod
    def for_slug(cls, slug: str) -> Links:
        return cls(BASE_PATH, f"{BASE_PATH}/{slug}")

    @classmethod
    def for_gateway(cls) -> Links:
        """A reply that is no page's (a 404, a badge): its links reach the static files through the gateway."""
        return cls(BASE_PATH, BASE_PATH)

    @classmethod
    def for_domain(cls) -> Links:
        return cls("", "")

    def feed(self, name: str) -> str:
        return f"{self.page}/{name}"


def markdown_html(text: str) -> Markup:
    """An incident message: Markdown rendered and sanitised by the management API's renderer, so the page shows
    exactly what its preview does."""
    from shared.rules.markdown import render_markdown

    return Markup(render_markdown(text))


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        daily_bars=charts.daily_bars,
        sparkline=charts.sparkline,
        uptime_text=uptime_text,
        markdown=markdown_html,
        incident_status=INCIDENT_STATUS_LABELS,
    )
    env.filters["when"] = when
    env.filters["iso"] = iso
    return env


def _asset(links: Links):
    return lambda name: CATALOGUE.url_of(name, links.prefix)


def bars_of(monitor: PublicMonitor) -> Markup:
    return charts.daily_bars(
        [day.as_bar() for day in monitor.days],
        label=f"{monitor.name}: uptime, last 90 days",
        focus="notable",  # 90 tab stops a monitor would bury the page's links under perfect days
    )


def render_page(page: PublicPage, links: Links) -> str:
    monitors = page.monitors
    overall = banner(
        [monitor.status.key for monitor in monitors], [incident.impact for incident in page.open_incidents]
    )
    past: list[PublicIncident] = [incident for incident in page.incidents if incident.resolved_at is not None]
    return (
        environment()
        .get_template("page.html")
        .render(
            page=page,
            links=links,
            asset=_asset(links),
            banner=overall,
            bars_of=bars_of,
            open_incidents=page.open_incidents,
            past_incidents=past,
            active_maintenance=[o for o in page.maintenance if o.active_at(page.read_at)],
            upcoming_maintenance=[o for o in page.maintenance if o.starts_at > page.read_at],
        )
    )


def render_history(history: IncidentHistory, links: Links) -> str:
    return (
        environment().get_template("history.html").render(history=history, links=links, asset=_asset(links))
    )


def render_not_found(links: Links, what: str) -> str:
    return environment().get_template("not_found.html").render(asset=_asset(links), what=what)
