"""A public status page's decisions (pure): each monitor's public status, the overall banner, whether a cached copy
is fresh, maintenance occurrences, and the duration names badges accept. shared/status/ reads and renders."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from croniter import croniter

# --------------------------------------------------------------------------------------- per monitor and page

FAILING_CHECKS = frozenset({"down", "error", "timeout"})


@dataclass(frozen=True)
class PublicStatus:
    key: str  # operational | degraded | down | maintenance | paused | unknown: the CSS class and data-status
    label: str  # what a reader sees, e.g. "Degraded in eu-central"


def public_status(
    status: str, *, enabled: bool, in_maintenance: bool, failing_locations: Sequence[str] = ()
) -> PublicStatus:
    """What the page says of one monitor. A monitor that is up overall (its strategy tolerated it) while some
    locations fail reads "Degraded in <those locations>": a partial outage by region."""
    if not enabled:
        return PublicStatus("paused", "Paused")
    if in_maintenance:
        return PublicStatus("maintenance", "Under maintenance")
    if status == "down" or status == "error":
        where = f" in {', '.join(failing_locations)}" if failing_locations else ""
        return PublicStatus("down", f"Down{where}")
    if status in ("up", "degraded") and failing_locations:
        return PublicStatus("degraded", f"Degraded in {', '.join(failing_locations)}")
    if status == "degraded":
        return PublicStatus("degraded", "Degraded")
    if status == "up":
        return PublicStatus("operational", "Operational")
    return PublicStatus("unknown", "No data yet")


class Banner(Enum):
    OPERATIONAL = ("operational", "All systems operational")
    MAINTENANCE = ("maintenance", "Under maintenance")
    PARTIAL = ("partial", "Partial outage")
    MAJOR = ("major", "Major outage")

    @property
    def key(self) -> str:
        return self.value[0]

    @property
    def label(self) -> str:
        return self.value[1]


def banner(statuses: Iterable[str], open_incident_impacts: Iterable[str] = ()) -> Banner:
    """The overall banner from the page's monitors' public status keys and its open published incidents' impacts.

    Major: more than half of the monitors that report are down, or an open critical incident. Partial: any down
    or degraded, or an open major incident. Maintenance: nothing failing and some monitor in a maintenance
    window. Paused monitors and those without data yet count for nothing."""
    keys = [key for key in statuses if key not in ("paused", "unknown")]
    impacts = set(open_incident_impacts)
    down = sum(key == "down" for key in keys)
    if "critical" in impacts or (down and down * 2 > len(keys)):
        return Banner.MAJOR
    if down or "degraded" in keys or "major" in impacts:
        return Banner.PARTIAL
    if "maintenance" in keys:
        return Banner.MAINTENANCE
    return Banner.OPERATIONAL


# ------------------------------------------------------------------------------------------------ the cache


class Freshness(Enum):
    FRESH = "fresh"  # serve it
    STALE = "stale"  # serve it, and have one task make a new copy
    EXPIRED = "expired"  # too old to show: wait for the new copy (one task makes it for every waiter)


def freshness(
    age_seconds: float,
    *,
    invalidated: bool,
    fresh_seconds: float,
    stale_seconds: float,
    min_render_interval_seconds: float,
) -> Freshness:
    """Whether a rendered copy of `age_seconds` may be served as it is.

    A status change (invalidated) makes a copy stale at once, unless it is younger than the minimum render
    interval: a storm of status changes then renders a page once per interval, not once per change. Past
    fresh + stale seconds nobody has asked for it for a long while, and a reader waits for the new copy rather
    than read minutes-old news."""
    if age_seconds >= fresh_seconds + stale_seconds:
        return Freshness.EXPIRED
    if age_seconds >= fresh_seconds or (invalidated and age_seconds >= min_render_interval_seconds):
        return Freshness.STALE
    return Freshness.FRESH


# -------------------------------------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class Occurrence:
    window_id: str
    name: str
    starts_at: datetime
    ends_at: datetime

    def active_at(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def occurrences(
    window_id: str,
    name: str,
    *,
    starts_at: datetime | None,
    ends_at: datetime | None,
    cron: str | None,
    duration_minutes: int | None,
    timezone: str,
    now: datetime,
    horizon: timedelta,
    most: int = 3,
) -> list[Occurrence]:
    """A window's occurrences that are running at `now` or start before now + horizon (at most `most`). A
    recurring window's current occurrence starts at the cron time before now; a cron or zone edited by hand into
    something invalid gives none, as alerting treats it."""
    if cron is None:
        if starts_at is None or ends_at is None or ends_at <= now or starts_at >= now + horizon:
            return []
        return [Occurrence(window_id, name, starts_at, ends_at)]
    length = timedelta(minutes=duration_minutes or 0)
    try:
        zone = ZoneInfo(timezone)
        local_now = now.astimezone(zone)
        times = croniter(cron, local_now - length)
        found = []
        while len(found) < most:
            start = times.get_next(datetime)
            if start >= now + horizon:
                break
            if start + length > now:
                found.append(Occurrence(window_id, name, start, start + length))
        return found
    except (KeyError, ValueError):
        return []


# ------------------------------------------------------------------------------------------------- badges

# Kuma's and Gatus' duration spellings for uptime and response-time badges, as hours.
BADGE_DURATIONS = {"1h": 1, "24h": 24, "1d": 24, "7d": 168, "30d": 720, "90d": 2160}
_HOURS = re.compile(r"^([1-9][0-9]{0,3})(h|d)?$")


def duration_hours(text: str) -> int | None:
    """ "24h", "7d", "30d" (Gatus), or a bare number of hours as Kuma's /ping/24 takes; at most 90 days."""
    if text in BADGE_DURATIONS:
        return BADGE_DURATIONS[text]
    match = _HOURS.match(text)
    if not match:
        return None
    hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
    return hours if hours <= BADGE_DURATIONS["90d"] else None
