"""A monitor's results, location stats, uptime and runs, as the API reads them (the "results" endpoints in
shared/api/routes/results.py; always scoped to one project)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared import db
from shared.api.requests import ResultsQuery
from shared.api.schemas import LocationStat, LocationStats, Pagination, ResultOut, ResultPage, RunOut, Timings
from shared.api.services.monitors import get_monitor
from shared.errors import ApiError


def result_out(row: dict) -> ResultOut:
    return ResultOut(
        id=row["id"],
        run_id=row["run_id"],
        monitor_id=row["monitor_id"],
        location=row["location"],
        status=row["status"],
        checked_at=row["checked_at"],
        response_time_ms=row["response_time_ms"],
        status_code=row["status_code"],
        timings=Timings(
            dns_ms=row["dns_ms"],
            connect_ms=row["connect_ms"],
            tls_ms=row["tls_ms"],
            first_byte_ms=row["first_byte_ms"],
        ),
        message=row["message"],
        details=row["details"],
        is_status_change=row["is_status_change"],
    )


async def results_page(project_id: uuid.UUID, monitor_id: uuid.UUID, query: ResultsQuery) -> ResultPage:
    await get_monitor(project_id, monitor_id)
    conditions, params = ["monitor_id = %s"], [monitor_id]
    if query.location:
        conditions.append("location = %s")
        params.append(query.location)
    if query.date:
        start, end = query.day_bounds()
        conditions.append("checked_at >= %s and checked_at < %s")
        params += [start, end]
    where = " and ".join(conditions)
    async with db.transaction() as conn:
        total = (
            await (
                await conn.execute(f"select count(*) as n from monitor_results where {where}", params)
            ).fetchone()
        )["n"]
        rows = await (
            await conn.execute(
                f"""select * from monitor_results where {where}
                    order by checked_at desc, id desc limit %s offset %s""",
                [*params, query.limit, (query.page - 1) * query.limit],
            )
        ).fetchall()
    return ResultPage(
        data=[result_out(row) for row in rows], pagination=Pagination.of(query.page, query.limit, total)
    )


async def location_stats(
    project_id: uuid.UUID, monitor_id: uuid.UUID, days: int, now: datetime | None = None
) -> LocationStats:
    """Per location over `days`: raw results inside the raw window, hourly/daily rollups beyond it."""
    from shared.pipeline import long_range

    await get_monitor(project_id, monitor_id)
    now = now or datetime.now(UTC)
    figures = await long_range.location_stats(monitor_id, days, now)
    async with db.transaction() as conn:
        latest = await (
            await conn.execute(
                """select distinct on (location) * from monitor_results
                   where monitor_id = %s and checked_at >= %s order by location, checked_at desc, id desc""",
                (monitor_id, now - timedelta(days=days)),
            )
        ).fetchall()
    latest_by_location = {row["location"]: result_out(row) for row in latest}
    return LocationStats(
        data=[
            LocationStat(
                location=stat.location,
                total_checks=stat.total_checks,
                up_checks=stat.up_checks,
                uptime_percentage=round(stat.uptime_percentage, 3)
                if stat.uptime_percentage is not None
                else None,
                avg_response_time=_round(stat.avg_response_time),
                min_response_time=stat.min_response_time,
                max_response_time=stat.max_response_time,
                p95_response_time=_round(stat.p95_response_time),
                latest=latest_by_location.get(stat.location),
            )
            for stat in sorted(figures.data, key=lambda stat: stat.location)
        ]
    )


async def uptime(project_id: uuid.UUID, monitor_id: uuid.UUID, days: int):
    from shared.pipeline import long_range

    await get_monitor(project_id, monitor_id)
    return await long_range.uptime(monitor_id, days)


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


async def get_run(project_id: uuid.UUID, run_id: uuid.UUID) -> RunOut:
    found = await get_runs(project_id, [run_id])
    if not found:
        raise ApiError(404, "not_found", "run not found")
    return found[0]


async def get_runs(project_id: uuid.UUID, run_ids: list[uuid.UUID]) -> list[RunOut]:
    """The project's runs among run_ids, in the order asked (others are left out), in two queries."""
    async with db.transaction() as conn:
        runs = await (
            await conn.execute(
                """select r.* from runs r join monitors m on m.id = r.monitor_id
                   where r.id = any(%s) and m.project_id = %s""",
                (run_ids, project_id),
            )
        ).fetchall()
        results = await (
            await conn.execute(
                "select * from monitor_results where run_id = any(%s) order by run_id, location",
                ([run["id"] for run in runs],),
            )
        ).fetchall()
    by_run: dict[uuid.UUID, list[dict]] = {}
    for row in results:
        by_run.setdefault(row["run_id"], []).append(row)
    found = {run["id"]: _run_out(run, by_run.get(run["id"], [])) for run in runs}
    return [found[run_id] for run_id in dict.fromkeys(run_ids) if run_id in found]


def _run_out(run: dict, results: list[dict]) -> RunOut:
    reported = {row["location"] for row in results}
    missing = (
        run["missing_locations"]
        if run["finalized_at"]
        else [loc for loc in run["expected_locations"] if loc not in reported]
    )
    return RunOut(
        id=run["id"],
        monitor_id=run["monitor_id"],
        status=run["status"],
        is_partial=run["is_partial"],
        scheduled_at=run["scheduled_at"],
        finalized_at=run["finalized_at"],
        deadline=run["deadline"],
        expected_locations=run["expected_locations"],
        missing_locations=missing,
        results=[result_out(row) for row in results],
    )


ARTIFACT_LINK_SECONDS = 15 * 60


async def artifact_link(project_id: uuid.UUID, monitor_id: uuid.UUID, result_id: int, name: str) -> str:
    """A presigned link to one artifact a synthetic run stored, for a result of the caller's monitor."""
    import asyncio

    from shared.settings import get_settings
    from shared.synthetic.artifacts import ArtifactStore

    await get_monitor(project_id, monitor_id)
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                "select details from monitor_results where id = %s and monitor_id = %s",
                (result_id, monitor_id),
            )
        ).fetchone()
    if row is None:
        raise ApiError(404, "not_found", "result not found")
    stored = (row["details"] or {}).get("artifacts")
    url = stored.get(name) if isinstance(stored, dict) else None
    if not isinstance(url, str):
        raise ApiError(404, "not_found", f"this result has no artifact '{name}'")
    store = ArtifactStore.from_settings(get_settings())
    key = store.key_of(url) if store else None
    if key is None:  # stored where this install no longer keeps artifacts
        raise ApiError(404, "not_found", f"artifact '{name}' is not in this install's artifact bucket")
    return await asyncio.to_thread(store.presigned_url, key, ARTIFACT_LINK_SECONDS)
