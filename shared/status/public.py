"""The public read model: what a published status page shows, read without a key. Every read starts from a
published page (or, for badges, asks whether a monitor is on one) and touches only the monitors on it, so a
monitor that is on no page, its target and its project never reach a reader. One transaction per page, a few
set-based statements, no query per monitor."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from psycopg import AsyncConnection

from shared import db
from shared.pipeline.rollups import DAILY_MARK, HOURLY_MARK, UP_STATUSES, read_marks
from shared.rules.retention import DAY, HOUR, UTC_ORIGIN, floor_day
from shared.rules.series import RangePlan, plan_segments
from shared.rules.status_page import (
    FAILING_CHECKS,
    Occurrence,
    PublicStatus,
    occurrences,
    public_status,
)

DAYS_SHOWN = 90
UPTIME_WINDOWS = (("24h", 1), ("7d", 7), ("30d", 30), ("90d", 90))
MAINTENANCE_HORIZON = timedelta(days=14)  # upcoming maintenance further ahead than this is not listed
PAST_INCIDENT_DAYS = 14  # resolved incidents stay on the page this long; the feeds keep more
FEED_ITEMS = 50

_PAGE_COLUMNS = """id, project_id, slug, title, description, custom_domain, show_response_times, show_uptime,
updated_at"""


@dataclass
class DayFigures:
    day: date
    checks: int = 0
    up_checks: int = 0
    outages: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def uptime(self) -> float | None:
        return 100.0 * self.up_checks / self.checks if self.checks else None

    def as_bar(self) -> dict:
        """The shape charts.daily_bars reads."""
        notes = (
            [f"{self.outages} outage" + ("" if self.outages == 1 else "s")] if self.outages else []
        ) + list(self.notes)
        return {"day": self.day, "uptime": self.uptime, "checks": self.checks or None, "notes": notes}


@dataclass
class PublicMonitor:
    id: uuid.UUID
    name: str
    group: str
    status: PublicStatus
    days: list[DayFigures]
    uptime: dict[str, float | None]  # "24h" | "7d" | "30d" | "90d" -> percent, None without data
    hourly_response_ms: list[tuple[datetime, float | None]]  # the last 24 h, for the optional chart
    last_check_at: datetime | None


@dataclass
class IncidentUpdate:
    status: str
    message: str  # Markdown as written; rendered sanitised by the page
    created_at: datetime


@dataclass
class PublicIncident:
    id: uuid.UUID
    title: str
    status: str
    impact: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime
    resolved_at: datetime | None
    monitor_names: list[str]  # only those on this page
    updates: list[IncidentUpdate]


@dataclass
class PublicPage:
    id: uuid.UUID
    slug: str
    title: str
    description: str
    custom_domain: str | None
    show_response_times: bool
    show_uptime: bool
    read_at: datetime
    groups: list[tuple[str, list[PublicMonitor]]]
    maintenance: list[Occurrence]
    incidents: list[
        PublicIncident
    ]  # newest first: open ones and those resolved in the last PAST_INCIDENT_DAYS

    @property
    def monitors(self) -> list[PublicMonitor]:
        return [monitor for _, monitors in self.groups for monitor in monitors]

    @property
    def open_incidents(self) -> list[PublicIncident]:
        return [incident for incident in self.incidents if incident.resolved_at is None]


# ---------------------------------------------------------------------------------------------------- reads


async def custom_domains() -> dict[str, str]:
    """Every published page's custom domain -> its slug (a short table, read whole and cached)."""
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                "select custom_domain, slug from status_pages where published and custom_domain is not null"
            )
        ).fetchall()
    return {row["custom_domain"]: row["slug"] for row in rows}


async def _published_page(conn, slug: str) -> dict | None:
    """The published page of that slug (its _PAGE_COLUMNS), or None: what every public read starts from."""
    return await (
        await conn.execute(f"select {_PAGE_COLUMNS} from status_pages where slug = %s and published", (slug,))
    ).fetchone()


async def read_page(slug: str, now: datetime | None = None) -> PublicPage | None:
    """A published page as it stands at `now`, or None when no published page has that slug."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        page = await _published_page(conn, slug)
        if page is None:
            return None
        rows = await (await conn.execute(_PAGE_MONITORS, (page["id"],))).fetchall()
        ids = [row["id"] for row in rows]
        marks = await read_marks(conn)
        failing = await _failing_locations(conn, ids)
        days = await _days(conn, ids, now, marks)
        hours = await _last_day_hours(conn, ids, now)
        windows = await _maintenance(conn, page["project_id"], ids, now)
        incidents = await _incidents(conn, page["id"], {row["id"]: row["name"] for row in rows}, now)
    _note_incidents_on_days(days, incidents, now)
    in_maintenance = _monitors_in_maintenance(windows, ids, now)
    groups: dict[str, list[PublicMonitor]] = {}
    for row in rows:
        monitor_days = days[row["id"]]
        status = public_status(
            row["status"],
            enabled=row["enabled"],
            in_maintenance=row["id"] in in_maintenance,
            failing_locations=failing.get(row["id"], ()),
        )
        groups.setdefault(row["group_name"], []).append(
            PublicMonitor(
                id=row["id"],
                name=row["name"],
                group=row["group_name"],
                status=status,
                days=monitor_days,
                uptime=_uptimes(monitor_days, hours.get(row["id"], [])),
                hourly_response_ms=[(hour, ms) for hour, _, _, ms in hours.get(row["id"], [])],
                last_check_at=row["last_check_at"],
            )
        )
    return PublicPage(
        id=page["id"],
        slug=page["slug"],
        title=page["title"],
        description=page["description"],
        custom_domain=page["custom_domain"],
        show_response_times=page["show_response_times"],
        show_uptime=page["show_uptime"],
        read_at=now,
        groups=list(groups.items()),
        maintenance=sorted(
            (occurrence for _, found in windows for occurrence in found), key=lambda o: o.starts_at
        ),
        incidents=incidents,
    )


_PAGE_MONITORS = """
select m.id, m.name, m.status, m.enabled, m.last_check_at, m.last_run_id, spm.group_name
from status_page_monitors spm join monitors m on m.id = spm.monitor_id
where spm.status_page_id = %s
order by spm.group_position, spm.position, m.name
"""


async def _failing_locations(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Per monitor, the locations that failed in its last applied run."""
    rows = await (
        await conn.execute(
            """select r.monitor_id, r.location from monitors m
               join monitor_results r on r.run_id = m.last_run_id
               where m.id = any(%s) and r.status = any(%s) order by r.location""",
            (ids, list(FAILING_CHECKS)),
        )
    ).fetchall()
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in rows:
        found[row["monitor_id"]].append(row["location"])
    return found


def _tier_sql(source: str) -> str:
    if source == "daily":
        return """select monitor_id, bucket as day, sum(checks)::bigint as checks, sum(up_checks)::bigint as up
                  from rollup_daily where monitor_id = any(%(ids)s) and bucket >= %(daily_start)s
                  and bucket < %(daily_end)s group by 1, 2"""
    if source == "hourly":
        return """select monitor_id, date_bin('1 day', bucket, %(origin)s) as day, sum(checks)::bigint,
                  sum(up_checks)::bigint from rollup_hourly where monitor_id = any(%(ids)s)
                  and bucket >= %(hourly_start)s and bucket < %(hourly_end)s group by 1, 2"""
    return """select monitor_id, date_bin('1 day', checked_at, %(origin)s) as day, count(*),
              count(*) filter (where status = any(%(up)s)) from monitor_results
              where monitor_id = any(%(ids)s) and checked_at >= %(raw_start)s group by 1, 2"""


async def _days(
    conn: AsyncConnection, ids: list[uuid.UUID], now: datetime, marks: dict[str, datetime]
) -> dict[uuid.UUID, list[DayFigures]]:
    """DAYS_SHOWN UTC days per monitor, today last: checks from the coarsest tier holding each part of the range
    (daily rollups, then hourly, then raw results, cut at the rollup watermarks so nothing counts twice), and
    the outages (flips to down) that began each day."""
    first_day = floor_day(now) - DAY * (DAYS_SHOWN - 1)
    plan = RangePlan(now - first_day, DAY, "daily")
    segments = plan_segments(plan, now, marks.get(HOURLY_MARK), marks.get(DAILY_MARK))
    params: dict = {"ids": ids, "origin": UTC_ORIGIN, "up": list(UP_STATUSES), "first_day": first_day}
    for segment in segments:
        params[f"{segment.source}_start"], params[f"{segment.source}_end"] = segment.start, segment.end
    parts = " union all ".join(_tier_sql(segment.source) for segment in segments) or (
        "select null::uuid, null::timestamptz, 0::bigint, 0::bigint where false"
    )
    rows = await (
        await conn.execute(
            f"""select parts.monitor_id, parts.day, sum(parts.checks)::bigint as checks,
                       sum(parts.up)::bigint as up_checks
                from ({parts}) as parts(monitor_id, day, checks, up) group by 1, 2""",
            params,
            prepare=False,
        )
    ).fetchall()
    flips = await (
        await conn.execute(
            """select monitor_id, date_bin('1 day', changed_at, %(origin)s) as day, count(*) as outages
               from status_changes where monitor_id = any(%(ids)s) and changed_at >= %(first_day)s
               and to_status = 'down' group by 1, 2""",
            params,
        )
    ).fetchall()
    figures = {
        monitor_id: {
            first_day.date() + timedelta(days=n): DayFigures(first_day.date() + timedelta(days=n))
            for n in range(DAYS_SHOWN)
        }
        for monitor_id in ids
    }
    for row in rows:
        day = figures[row["monitor_id"]].get(row["day"].astimezone(UTC).date())
        if day is not None:
            day.checks, day.up_checks = row["checks"], row["up_checks"]
    for row in flips:
        day = figures[row["monitor_id"]].get(row["day"].astimezone(UTC).date())
        if day is not None:
            day.outages = row["outages"]
    return {monitor_id: list(days.values()) for monitor_id, days in figures.items()}


async def _last_day_hours(
    conn: AsyncConnection, ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[tuple[datetime, int, int, float | None]]]:
    """The last 24 hours from raw results (always kept that long), per monitor and hour: (hour, checks, up
    checks, mean response time), for the 24-hour uptime and the response-time chart."""
    rows = await (
        await conn.execute(
            """select monitor_id, date_bin('1 hour', checked_at, %(origin)s) as hour, count(*) as checks,
                      count(*) filter (where status = any(%(up)s)) as up_checks,
                      avg(response_time_ms)::float8 as ms
               from monitor_results where monitor_id = any(%(ids)s) and checked_at >= %(since)s
               group by 1, 2 order by 1, 2""",
            {"ids": ids, "origin": UTC_ORIGIN, "up": list(UP_STATUSES), "since": now - timedelta(hours=24)},
        )
    ).fetchall()
    found: dict[uuid.UUID, list] = defaultdict(list)
    for row in rows:
        found[row["monitor_id"]].append((row["hour"], row["checks"], row["up_checks"], row["ms"]))
    return found


def _uptimes(days: list[DayFigures], hours: list[tuple]) -> dict[str, float | None]:
    """24 h from the hourly raw figures; 7, 30 and 90 d over that many UTC days, today included."""
    found: dict[str, float | None] = {}
    for name, count in UPTIME_WINDOWS:
        if count == 1:
            checks, up = sum(h[1] for h in hours), sum(h[2] for h in hours)
        else:
            window = days[-count:]
            checks, up = sum(d.checks for d in window), sum(d.up_checks for d in window)
        found[name] = 100.0 * up / checks if checks else None
    return found


async def _maintenance(
    conn: AsyncConnection, project_id: uuid.UUID, ids: list[uuid.UUID], now: datetime
) -> list[tuple[list[uuid.UUID] | None, list[Occurrence]]]:
    """The project's windows that cover a monitor on the page (an empty monitor list covers them all), with
    their running and upcoming occurrences; (None, ...) for a window of the whole project."""
    rows = await (
        await conn.execute(
            """select id, name, monitor_ids, starts_at, ends_at, cron, duration_minutes, timezone
               from maintenance_windows
               where project_id = %s and (monitor_ids = '{}' or monitor_ids && %s::uuid[])""",
            (project_id, ids),
        )
    ).fetchall()
    found = []
    for row in rows:
        covered = [m for m in row["monitor_ids"] if m in set(ids)] if row["monitor_ids"] else None
        windows = occurrences(
            str(row["id"]),
            row["name"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            cron=row["cron"],
            duration_minutes=row["duration_minutes"],
            timezone=row["timezone"],
            now=now,
            horizon=MAINTENANCE_HORIZON,
        )
        if windows:
            found.append((covered, windows))
    return found


def _monitors_in_maintenance(windows: list, ids: list[uuid.UUID], now: datetime) -> set[uuid.UUID]:
    inside: set[uuid.UUID] = set()
    for covered, found in windows:
        if any(occurrence.active_at(now) for occurrence in found):
            inside.update(ids if covered is None else covered)
    return inside


_INCIDENTS = """
select i.id, i.title, i.status, i.impact, i.created_at, i.updated_at,
       coalesce(i.published_at, i.created_at) as published_at, i.resolved_at,
       coalesce(array_agg(im.monitor_id) filter (where im.monitor_id is not null), '{}') as monitor_ids
from incidents i left join incident_monitors im on im.incident_id = i.id
where i.status_page_id = %(page)s and not i.is_draft
      and (i.resolved_at is null or i.resolved_at >= %(since)s)
group by i.id order by i.created_at desc, i.id limit %(limit)s offset %(offset)s
"""


async def _incidents(
    conn: AsyncConnection,
    page_id: uuid.UUID,
    names: dict[uuid.UUID, str],
    now: datetime,
    since: datetime | None = None,
    limit: int = FEED_ITEMS,
    offset: int = 0,
) -> list[PublicIncident]:
    """Published incidents only (a draft is the operator's until published), open ones and those resolved
    since `since` (PAST_INCIDENT_DAYS by default), with their timelines; named monitors only if on the page."""
    since = since or now - timedelta(days=PAST_INCIDENT_DAYS)
    rows = await (
        await conn.execute(_INCIDENTS, {"page": page_id, "since": since, "limit": limit, "offset": offset})
    ).fetchall()
    updates = await (
        await conn.execute(
            """select incident_id, status, message, created_at from incident_updates
               where incident_id = any(%s) order by created_at desc, id desc""",
            ([row["id"] for row in rows],),
        )
    ).fetchall()
    timeline: dict[uuid.UUID, list[IncidentUpdate]] = defaultdict(list)
    for row in updates:
        timeline[row["incident_id"]].append(IncidentUpdate(row["status"], row["message"], row["created_at"]))
    return [
        PublicIncident(
            id=row["id"],
            title=row["title"],
            status=row["status"],
            impact=row["impact"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            published_at=row["published_at"],
            resolved_at=row["resolved_at"],
            monitor_names=[names[m] for m in row["monitor_ids"] if m in names],
            updates=timeline[row["id"]],
        )
        for row in rows
    ]


def _note_incidents_on_days(
    days: dict[uuid.UUID, list[DayFigures]], incidents: list[PublicIncident], now: datetime
) -> None:
    """Each day an incident of the page was open names it on every bar of that day: the incident list holds
    this page's incidents only, and one that names no monitor concerns the whole page."""
    for incident in incidents:
        start = incident.created_at.astimezone(UTC).date()
        end = (incident.resolved_at or now).astimezone(UTC).date()
        for monitor_days in days.values():
            for day in monitor_days:
                if start <= day.day <= end:
                    day.notes.append(f"Incident: {incident.title}")


# ------------------------------------------------------------------------------------------------ feeds


@dataclass
class FeedContent:
    slug: str
    title: str
    custom_domain: str | None
    updated_at: datetime
    incidents: list[PublicIncident]
    maintenance: list[Occurrence]


async def read_feed(slug: str, now: datetime | None = None) -> FeedContent | None:
    """A page's incidents (the latest FEED_ITEMS, resolved or not) and its running and upcoming maintenance."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        page = await _published_page(conn, slug)
        if page is None:
            return None
        rows = await (await conn.execute(_PAGE_MONITORS, (page["id"],))).fetchall()
        ids = [row["id"] for row in rows]
        windows = await _maintenance(conn, page["project_id"], ids, now)
        incidents = await _incidents(
            conn,
            page["id"],
            {row["id"]: row["name"] for row in rows},
            now,
            since=datetime.min.replace(tzinfo=UTC),
        )
    maintenance = sorted((o for _, found in windows for o in found), key=lambda o: o.starts_at)
    latest = max([page["updated_at"], *(i.updated_at for i in incidents)])
    return FeedContent(page["slug"], page["title"], page["custom_domain"], latest, incidents, maintenance)


# ------------------------------------------------------------------------------------- incident history

HISTORY_PAGE_SIZE = 20


@dataclass
class IncidentHistory:
    slug: str
    title: str
    page: int
    pages: int
    incidents: list[PublicIncident]


async def read_history(slug: str, page: int, now: datetime | None = None) -> IncidentHistory | None:
    """One page (from 1) of a status page's published incidents, newest first, HISTORY_PAGE_SIZE a page."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        found = await _published_page(conn, slug)
        if found is None:
            return None
        total = await (
            await conn.execute(
                "select count(*) as n from incidents where status_page_id = %s and not is_draft",
                (found["id"],),
            )
        ).fetchone()
        rows = await (await conn.execute(_PAGE_MONITORS, (found["id"],))).fetchall()
        incidents = await _incidents(
            conn,
            found["id"],
            {row["id"]: row["name"] for row in rows},
            now,
            since=datetime.min.replace(tzinfo=UTC),
            limit=HISTORY_PAGE_SIZE,
            offset=(page - 1) * HISTORY_PAGE_SIZE,
        )
    pages = max(1, -(-total["n"] // HISTORY_PAGE_SIZE))
    return IncidentHistory(found["slug"], found["title"], page, pages, incidents)


# ---------------------------------------------------------------------------------------------- badges


@dataclass
class BadgeFacts:
    """A monitor on a published page, as its badges show it."""

    id: uuid.UUID
    name: str
    group: str
    status: PublicStatus
    uptime: float | None = None
    mean_response_ms: float | None = None
    certificate_days: int | None = None
    hourly_response_ms: list[tuple[datetime, float | None]] = field(default_factory=list)


_PUBLIC_MONITOR = """
select m.id, m.name, m.status, m.enabled, spm.group_name
from monitors m
join status_page_monitors spm on spm.monitor_id = m.id
join status_pages p on p.id = spm.status_page_id and p.published
where m.id = %s
order by p.created_at limit 1
"""


async def badge_facts(monitor_id: uuid.UUID, hours: int, now: datetime | None = None) -> BadgeFacts | None:
    """A monitor's status, uptime and mean response time over the last `hours`, its certificate's days left,
    and its hourly response times; None unless it is on a published page."""
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        row = await (await conn.execute(_PUBLIC_MONITOR, (monitor_id,))).fetchone()
        if row is None:
            return None
        failing = await _failing_locations(conn, [monitor_id])
        in_maintenance = _monitors_in_maintenance(
            await _maintenance(conn, await _project_of(conn, monitor_id), [monitor_id], now),
            [monitor_id],
            now,
        )
        figures = await _window_figures(conn, monitor_id, now, hours)
        certificate = await (
            await conn.execute(
                """select details -> 'ssl' ->> 'validTo' as valid_to from monitor_results
                   where monitor_id = %s and checked_at >= %s and details -> 'ssl' ? 'validTo'
                   order by checked_at desc limit 1""",
                (monitor_id, now - timedelta(days=7)),
            )
        ).fetchone()
        hourly = await _last_day_hours(conn, [monitor_id], now)
    status = public_status(
        row["status"],
        enabled=row["enabled"],
        in_maintenance=monitor_id in in_maintenance,
        failing_locations=failing.get(monitor_id, ()),
    )
    days_left = None
    if certificate and certificate["valid_to"]:
        valid_to = datetime.fromisoformat(certificate["valid_to"].replace("Z", "+00:00"))
        days_left = -((now - valid_to) // timedelta(days=1))  # whole days, rounded up
    return BadgeFacts(
        id=row["id"],
        name=row["name"],
        group=row["group_name"],
        status=status,
        uptime=figures["uptime"],
        mean_response_ms=figures["ms"],
        certificate_days=days_left,
        hourly_response_ms=[(hour, ms) for hour, _, _, ms in hourly.get(monitor_id, [])],
    )


async def _project_of(conn: AsyncConnection, monitor_id: uuid.UUID) -> uuid.UUID:
    row = await (
        await conn.execute("select project_id from monitors where id = %s", (monitor_id,))
    ).fetchone()
    return row["project_id"]


_WINDOW_PARTS = {
    "daily": """select checks, up_checks, response_count, response_sum_ms from rollup_daily
                where monitor_id = %(id)s and bucket >= %(daily_start)s and bucket < %(daily_end)s""",
    "hourly": """select checks, up_checks, response_count, response_sum_ms from rollup_hourly
                 where monitor_id = %(id)s and bucket >= %(hourly_start)s and bucket < %(hourly_end)s""",
    "raw": """select count(*), count(*) filter (where status = any(%(up)s)), count(response_time_ms),
                     coalesce(sum(response_time_ms), 0)
              from monitor_results where monitor_id = %(id)s and checked_at >= %(raw_start)s""",
}


async def _window_figures(conn: AsyncConnection, monitor_id: uuid.UUID, now: datetime, hours: int) -> dict:
    """Uptime and mean response time over the last `hours`, from the coarsest tier holding each part (cut at the
    rollup watermarks, as the page's bars are): whole UTC days from a week up, whole hours below, so a window
    starts at the day or hour it began in."""
    marks = await read_marks(conn)
    plan = (
        RangePlan(timedelta(hours=hours), DAY, "daily")
        if hours >= 168
        else RangePlan(timedelta(hours=hours), HOUR, "hourly")
    )
    segments = plan_segments(plan, now, marks.get(HOURLY_MARK), marks.get(DAILY_MARK))
    params: dict = {"id": monitor_id, "up": list(UP_STATUSES)}
    for segment in segments:
        params[f"{segment.source}_start"], params[f"{segment.source}_end"] = segment.start, segment.end
    parts = " union all ".join(_WINDOW_PARTS[segment.source] for segment in segments)
    row = await (
        await conn.execute(
            f"""select sum(checks)::bigint as checks, sum(up)::bigint as up, sum(n)::bigint as n,
                       sum(ms)::float8 as ms
                from ({parts}) as parts(checks, up, n, ms)""",
            params,
            prepare=False,
        )
    ).fetchone()
    checks, n = row["checks"] or 0, row["n"] or 0
    return {
        "uptime": 100.0 * row["up"] / checks if checks else None,
        "ms": row["ms"] / n if n else None,
    }


@dataclass
class EndpointStatus:
    key: str
    name: str
    group: str
    results: list[dict]


async def endpoint_statuses(per_monitor: int = 20) -> list[EndpointStatus]:
    """Every monitor on a published page with its latest results (Gatus' /api/v1/endpoints/statuses)."""
    async with db.transaction() as conn:
        monitors = await (
            await conn.execute(
                """select distinct on (m.id) m.id, m.name, spm.group_name
                   from monitors m join status_page_monitors spm on spm.monitor_id = m.id
                   join status_pages p on p.id = spm.status_page_id and p.published
                   order by m.id, p.created_at"""
            )
        ).fetchall()
        results = await (
            await conn.execute(
                """select x.monitor_id, x.location, x.status, x.response_time_ms, x.checked_at
                   from unnest(%s::uuid[]) as mid(id)
                   cross join lateral (
                       select monitor_id, location, status, response_time_ms, checked_at from monitor_results
                       where monitor_id = mid.id order by checked_at desc limit %s) x""",
                ([row["id"] for row in monitors], per_monitor),
            )
        ).fetchall()
    by_monitor: dict[uuid.UUID, list[dict]] = defaultdict(list)
    for row in results:
        by_monitor[row["monitor_id"]].append(
            {
                "status": row["status"],
                "location": row["location"],
                "success": row["status"] in UP_STATUSES,
                # Gatus reports durations in nanoseconds
                "duration": None if row["response_time_ms"] is None else row["response_time_ms"] * 1_000_000,
                "timestamp": row["checked_at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
        )
    ordered = sorted(monitors, key=lambda row: (row["group_name"], row["name"]))
    return [
        EndpointStatus(str(row["id"]), row["name"], row["group_name"], list(reversed(by_monitor[row["id"]])))
        for row in ordered
    ]
