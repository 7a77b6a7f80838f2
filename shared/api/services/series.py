"""Chart reads for the dashboard, computed in SQL from rollups and raw results, never by loading every result: the
monitor list's 24-hour summaries, a monitor's response-time series per location, and its latest TLS certificate.
Which tier answers which part of a range is shared.rules.series' decision; the watermarks are shared.pipeline.rollups'.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from psycopg import AsyncConnection

from shared import db
from shared.api.schemas import (
    CertificateReport,
    LocationCertificate,
    LocationSeries,
    MonitorSummary,
    PhasePoint,
    ResponseTimeSeries,
    SeriesPoint,
    SeriesSource,
    SparklinePoint,
)
from shared.api.services.monitors import get_monitor
from shared.pipeline.rollups import DAILY_MARK, HOURLY_MARK, RAW_MARK, UP_STATUSES, read_marks
from shared.rules.retention import HOUR, UTC_ORIGIN
from shared.rules.series import (
    PLANS,
    SUMMARY_PLAN,
    RangePlan,
    Segment,
    phases_start,
    plan_segments,
    range_start,
)

_NO_RANGE = (UTC_ORIGIN, UTC_ORIGIN)  # an empty [start, end) for a tier the plan does not read


def _ranges(segments: list[Segment]) -> dict[str, tuple[datetime, datetime]]:
    """Each source's [start, end), or an empty one; 'whole' is the segment whose rows are chart buckets as they
    are, 'merged_hourly' the hourly rows merged into coarser buckets."""
    found = {"whole": _NO_RANGE, "merged_hourly": _NO_RANGE, "raw": _NO_RANGE}
    for segment in segments:
        if segment.whole_buckets:
            found["whole"] = (segment.start, segment.end)
        elif segment.source == "hourly":
            found["merged_hourly"] = (segment.start, segment.end)
        else:
            found["raw"] = (segment.start, segment.end)
    return found


def _segment_params(plan: RangePlan, segments: list[Segment]) -> dict:
    ranges = _ranges(segments)
    return {
        "bucket": plan.bucket,
        "origin": UTC_ORIGIN,
        "up": list(UP_STATUSES),
        "whole_from": ranges["whole"][0],
        "whole_to": ranges["whole"][1],
        "hourly_from": ranges["merged_hourly"][0],
        "hourly_to": ranges["merged_hourly"][1],
        "raw_from": ranges["raw"][0],
        "raw_to": ranges["raw"][1],
    }


def _whole_table(segments: list[Segment]) -> str:
    whole = [segment.source for segment in segments if segment.whole_buckets]
    return "rollup_daily" if whole == ["daily"] else "rollup_hourly"  # hourly with an empty range when none


async def _segments(conn: AsyncConnection, plan: RangePlan, now: datetime) -> tuple[list[Segment], dict]:
    marks = await read_marks(conn)
    return plan_segments(plan, now, marks.get(HOURLY_MARK), marks.get(DAILY_MARK)), marks


# --- the monitor list's summaries ------------------------------------------------------------------------

# Rollup reads name the locations (every region, active or not: a result's location is always one, and regions are
# only ever deactivated), so the primary key (monitor_id, location, bucket) gives one short bucket range per
# monitor and location instead of every bucket the monitor has; no index of its own is needed.
#
# Per monitor of the page, all locations together: its 24-hour totals, and the hours that had a response time as
# their position in the day (0 is the oldest) with their average. Hourly rollups, whose rows are the hours, up to
# the hourly watermark; raw results from it on; the two ranges meet at the watermark and never overlap. One row per
# monitor: fetching an hour per row was most of the summary's cost.
_SUMMARIES = """
with hours as (
    select monitor_id, t, sum(checks) as checks, sum(up_checks) as up_checks,
           sum(response_count) as response_count, sum(response_sum_ms) as response_sum_ms
    from (
        select monitor_id, bucket as t, checks, up_checks, response_count, response_sum_ms
        from rollup_hourly
        where monitor_id = any(%(monitor_ids)s) and location = any(array(select code from regions))
              and bucket >= %(whole_from)s and bucket < %(whole_to)s
        union all
        select monitor_id, date_bin('1 hour', checked_at, %(origin)s), count(*),
               count(*) filter (where status = any(%(up)s)), count(response_time_ms), coalesce(sum(response_time_ms), 0)
        from monitor_results
        where monitor_id = any(%(monitor_ids)s) and checked_at >= %(raw_from)s and checked_at < %(raw_to)s
        group by 1, 2
    ) parts
    group by monitor_id, t
)
select monitor_id, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
       sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
       array_agg((extract(epoch from t - %(since)s) / 3600)::int order by t)
           filter (where response_count > 0) as positions,
       array_agg(response_sum_ms::float8 / response_count order by t) filter (where response_count > 0) as averages
from hours group by monitor_id
"""


async def summaries(
    monitor_ids: list[uuid.UUID], now: datetime | None = None
) -> dict[uuid.UUID, MonitorSummary]:
    """The 24-hour summary of each of the given monitors (one page of the list), in one query."""
    now = now or datetime.now(UTC)
    since = range_start(SUMMARY_PLAN, now)
    async with db.transaction() as conn:
        segments, _ = await _segments(conn, SUMMARY_PLAN, now)
        params = {**_segment_params(SUMMARY_PLAN, segments), "monitor_ids": monitor_ids, "since": since}
        rows = await (await conn.execute(_SUMMARIES, params, prepare=False)).fetchall()
    found = {row["monitor_id"]: row for row in rows}
    starts = [since + HOUR * i for i in range(24)]
    return {monitor_id: _summary(found.get(monitor_id), starts) for monitor_id in monitor_ids}


def _summary(row: dict | None, starts: list[datetime]) -> MonitorSummary:
    """Built with model_construct: the figures come from our own query, and validating them for each of a page's
    monitors was most of the list's time."""
    averages: list[float | None] = [None] * len(starts)
    for position, average in zip(row["positions"] or [], row["averages"] or [], strict=True) if row else ():
        averages[position] = round(average, 2)
    checks, responses = (row["checks"], row["response_count"]) if row else (0, 0)
    return MonitorSummary.model_construct(
        uptime24h=round(100.0 * row["up_checks"] / checks, 3) if checks else None,
        avg_response_ms24h=round(row["response_sum_ms"] / responses, 2) if responses else None,
        sparkline=[SparklinePoint(t=start, ms=ms) for start, ms in zip(starts, averages, strict=True)],
    )


# --- a monitor's response-time series ----------------------------------------------------------------------

# One point per raw result (the 1h range).
_RAW_POINTS = """
select location, checked_at as t, response_time_ms as v, (status = any(%(up)s))::int as up
from monitor_results where monitor_id = %(monitor_id)s and checked_at >= %(raw_from)s and checked_at < %(raw_to)s
order by location, checked_at, id
"""

# Buckets per location. `whole` rows are chart buckets as stored (their p95 included). Hourly rows of a day not yet
# rolled into the daily tier, and raw results, are merged into the chart's buckets; their p95 is percentile_cont
# over the merged values (each hourly histogram expanded back into its values), as the rollups compute it.
_BUCKETS = """
with merged as (
    select location, date_bin(%(bucket)s, bucket, %(origin)s) as t, checks, up_checks, response_count,
           response_sum_ms, min_response_ms as min_ms, max_response_ms as max_ms
    from rollup_hourly
    where monitor_id = %(monitor_id)s and location = any(array(select code from regions))
          and bucket >= %(hourly_from)s and bucket < %(hourly_to)s
    union all
    select location, date_bin(%(bucket)s, checked_at, %(origin)s), count(*), count(*) filter (where status = any(%(up)s)),
           count(response_time_ms), coalesce(sum(response_time_ms), 0), min(response_time_ms), max(response_time_ms)
    from monitor_results
    where monitor_id = %(monitor_id)s and checked_at >= %(raw_from)s and checked_at < %(raw_to)s
    group by 1, 2
),
merged_values as (
    select h.location, date_bin(%(bucket)s, h.bucket, %(origin)s) as t, u.v
    from rollup_hourly h
    cross join lateral unnest(h.response_values_ms, h.response_value_counts) as u(v, c)
    cross join lateral generate_series(1, u.c)
    where h.monitor_id = %(monitor_id)s and h.location = any(array(select code from regions))
          and h.bucket >= %(hourly_from)s and h.bucket < %(hourly_to)s
    union all
    select location, date_bin(%(bucket)s, checked_at, %(origin)s), response_time_ms
    from monitor_results
    where monitor_id = %(monitor_id)s and checked_at >= %(raw_from)s and checked_at < %(raw_to)s
          and response_time_ms is not null
),
merged_p95 as (
    select location, t, percentile_cont(0.95) within group (order by v) as p95_ms from merged_values group by 1, 2
)
select location, bucket as t, checks::bigint, up_checks::bigint, response_count::bigint, response_sum_ms::bigint,
       min_response_ms as min_ms, max_response_ms as max_ms, p95_response_ms as p95_ms
from {whole_table}
where monitor_id = %(monitor_id)s and location = any(array(select code from regions))
      and bucket >= %(whole_from)s and bucket < %(whole_to)s
union all
select m.location, m.t, m.checks, m.up_checks, m.response_count, m.response_sum_ms, m.min_ms, m.max_ms, p.p95_ms
from (
    select location, t, sum(checks)::bigint as checks, sum(up_checks)::bigint as up_checks,
           sum(response_count)::bigint as response_count, sum(response_sum_ms)::bigint as response_sum_ms,
           min(min_ms) as min_ms, max(max_ms) as max_ms
    from merged group by location, t
) m
left join merged_p95 p using (location, t)
order by location, t
"""

_PHASES = """
select location, {t} as t, avg(dns_ms) as dns_ms, avg(connect_ms) as connect_ms, avg(tls_ms) as tls_ms,
       avg(first_byte_ms) as first_byte_ms
from monitor_results where monitor_id = %(monitor_id)s and checked_at >= %(phases_from)s and checked_at < %(until)s
group by 1, 2 order by 1, 2
"""


async def response_times(
    project_id: uuid.UUID, monitor_id: uuid.UUID, range_name: str, now: datetime | None = None
) -> ResponseTimeSeries:
    await get_monitor(project_id, monitor_id)
    now = now or datetime.now(UTC)
    plan = PLANS[range_name]
    since = range_start(plan, now)
    async with db.transaction() as conn:
        segments, marks = await _segments(conn, plan, now)
        params = {**_segment_params(plan, segments), "monitor_id": monitor_id}
        if plan.bucket is None:
            rows = await (await conn.execute(_RAW_POINTS, params)).fetchall()
            points = [_raw_point(row) for row in rows]
        else:
            sql = _BUCKETS.format(whole_table=_whole_table(segments))
            rows = await (await conn.execute(sql, params, prepare=False)).fetchall()
            points = [_bucket_point(row) for row in rows]
        phases_from = phases_start(since, marks.get(RAW_MARK))
        bucket_sql = "date_bin(%(bucket)s, checked_at, %(origin)s)" if plan.bucket else "checked_at"
        phase_rows = await (
            await conn.execute(
                _PHASES.format(t=bucket_sql),
                {**params, "phases_from": phases_from, "until": now},
                prepare=False,
            )
        ).fetchall()
    by_location: dict[str, LocationSeries] = {}
    for location, point in points:
        by_location.setdefault(
            location, LocationSeries(location=location, points=[], phases=[])
        ).points.append(point)
    for row in phase_rows:
        series = by_location.setdefault(
            row["location"], LocationSeries(location=row["location"], points=[], phases=[])
        )
        series.phases.append(
            PhasePoint(
                t=row["t"],
                dns_ms=_round(row["dns_ms"]),
                connect_ms=_round(row["connect_ms"]),
                tls_ms=_round(row["tls_ms"]),
                first_byte_ms=_round(row["first_byte_ms"]),
            )
        )
    return ResponseTimeSeries(
        monitor_id=monitor_id,
        range=range_name,
        since=since,
        until=now,
        bucket_seconds=int(plan.bucket.total_seconds()) if plan.bucket else None,
        sources=[SeriesSource(source=s.source, start=s.start, end=s.end) for s in segments],
        phases_from=phases_from,
        locations=sorted(by_location.values(), key=lambda series: series.location),
    )


def _raw_point(row: dict) -> tuple[str, SeriesPoint]:
    value = row["v"]
    return row["location"], SeriesPoint(
        t=row["t"], avg_ms=value, p95_ms=value, min_ms=value, max_ms=value, checks=1, up_checks=row["up"]
    )


def _bucket_point(row: dict) -> tuple[str, SeriesPoint]:
    average = row["response_sum_ms"] / row["response_count"] if row["response_count"] else None
    return row["location"], SeriesPoint(
        t=row["t"],
        avg_ms=_round(average),
        p95_ms=_round(row["p95_ms"]),
        min_ms=row["min_ms"],
        max_ms=row["max_ms"],
        checks=row["checks"],
        up_checks=row["up_checks"],
    )


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


# --- a monitor's TLS certificate ------------------------------------------------------------------------------

TLS_TYPES = ("http_request", "website")
# The HTTP check records a certificate's facts only when it reads it (adaptively, at least daily, and a monitor
# runs at least daily), so its latest record is within two days; looking back a week bounds the scan.
CERTIFICATE_LOOKBACK = timedelta(days=7)

# Per location that reported lately, its newest result carrying certificate facts (details.ssl.validTo: a check that
# read the certificate, whether the handshake accepted it or not).
_LATEST_CERTIFICATES = """
select loc.location, c.checked_at, c.ssl
from (select code as location from regions) loc
cross join lateral (
    select x.checked_at, x.details -> 'ssl' as ssl
    from monitor_results x
    where x.monitor_id = %(monitor_id)s and x.location = loc.location and x.checked_at >= %(since)s
          and x.details -> 'ssl' ? 'validTo'
    order by x.checked_at desc
    limit 1
) c
order by loc.location
"""


def has_tls(monitor: dict) -> bool:
    return monitor["type"] in TLS_TYPES and urlsplit(monitor["target"]).scheme.lower() == "https"


async def certificate(
    project_id: uuid.UUID, monitor_id: uuid.UUID, now: datetime | None = None
) -> CertificateReport:
    monitor = await get_monitor(project_id, monitor_id)
    if not has_tls(monitor):
        return CertificateReport(monitor_id=monitor_id, certificates=None)
    now = now or datetime.now(UTC)
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                _LATEST_CERTIFICATES, {"monitor_id": monitor_id, "since": now - CERTIFICATE_LOOKBACK}
            )
        ).fetchall()
    return CertificateReport(monitor_id=monitor_id, certificates=[_certificate(row, now) for row in rows])


def _certificate(row: dict, now: datetime) -> LocationCertificate:
    from shared.checks.certificates import days_until  # that module loads cryptography and Redis: only here

    facts = row["ssl"]
    not_after = _instant(facts.get("validTo"))
    return LocationCertificate(
        location=row["location"],
        checked_at=row["checked_at"],
        not_before=_instant(facts.get("validFrom")),
        not_after=not_after,
        days_remaining=days_until(not_after, now) if not_after else None,
        expired=not_after <= now if not_after else None,
        issuer=facts.get("issuer"),
        subject=facts.get("subject"),
        sans=[str(name) for name in facts.get("sans") or []],
        serial_number=facts.get("serialNumber"),
        sha256_fingerprint=facts.get("sha256Fingerprint"),
    )


def _instant(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
