"""A monitor's detail page: its status now and per location, response times and timing phases over a chosen
range, 90 days of daily uptime, incidents, results (filtered and paged), its TLS certificate, its alert
history, and for a synthetic test the artifacts of each run; kept current live over the API's events.

Every figure is what the API answers for the signed-in key (shared/api/routes/*.py); the reads run together.
This module only shapes those replies for the templates under templates/detail/ and for charts.py."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup

from shared.dashboard import charts
from shared.dashboard.web import BASE_PATH, PageContext, QueryValues, page

RANGES = (("1h", "1 h"), ("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d"), ("90d", "90 d"))
DEFAULT_RANGE = "24h"
RANGE_WORDS = {
    "1h": "last hour",
    "24h": "last 24 hours",
    "7d": "last 7 days",
    "30d": "last 30 days",
    "90d": "last 90 days",
}
UPTIME_DAYS = 90
RESULTS_PAGE_SIZE = 20
ALERTS_PAGE_SIZE = 10
INCIDENTS_PAGE_SIZE = 10
STATS_DAYS = 7  # the per-location figures beside each location's current status
# The query parameters of the results table (passed to GET /monitors/{id}/results as they are).
RESULT_FILTERS = ("location", "date", "timezoneOffset", "page")
# Artifacts a synthetic run stores (shared/synthetic/check.py, sandbox.py), in the order they are offered.
ARTIFACTS = (("report.html", "HTML report"), ("screenshot.png", "Screenshot"), ("trace.zip", "Trace"))


@page("/monitors/{monitor_id:uuid}")
async def monitor_detail(ctx: PageContext, monitor_id: uuid.UUID):
    path = f"/monitors/{monitor_id}"
    query = ctx.query("range", *RESULT_FILTERS, "alertsPage", "incidentsPage", "fragment")
    results_filters = QueryValues({name: query[name] for name in RESULT_FILTERS if query[name]})
    results_params = {**results_filters, "limit": RESULTS_PAGE_SIZE}

    if query["fragment"] == "results":  # the table alone, for the browser's filters, pager and live refresh
        monitor, results = await asyncio.gather(
            ctx.api.get(path), ctx.api.get(f"{path}/results", results_params)
        )
        return ctx.render("detail/results.html", **_results_values(monitor, results, results_filters, query))

    range_name = query["range"] or DEFAULT_RANGE

    async def monitor_and_last_run():
        monitor = await ctx.api.get(path)
        last_run = monitor.get("lastRun")
        return monitor, (await ctx.api.get(f"/runs/{last_run['id']}") if last_run else None)

    (monitor, run), stats, series, uptime, incidents, results, certificate, alerts = await asyncio.gather(
        monitor_and_last_run(),
        ctx.api.get(f"{path}/location-stats", {"days": STATS_DAYS}),
        ctx.api.get(f"{path}/response-times", {"range": range_name}),
        ctx.api.get(f"{path}/uptime", {"days": UPTIME_DAYS}),
        ctx.api.get(
            f"{path}/incidents",
            {"days": UPTIME_DAYS, "limit": INCIDENTS_PAGE_SIZE, "page": query["incidentsPage"]},
        ),
        ctx.api.get(f"{path}/results", results_params),
        ctx.api.get(f"{path}/certificate"),
        ctx.api.get(f"{path}/alerts", {"limit": ALERTS_PAGE_SIZE, "page": query["alertsPage"]}),
    )
    name = monitor["name"]
    range_word = RANGE_WORDS.get(range_name, range_name)
    return ctx.render(
        "detail/page.html",
        run=run,
        locations=location_rows(monitor, run, stats),
        ranges=RANGES,
        range_name=range_name,
        range_word=range_word,
        series=series,
        response_chart=response_chart(series, label=f"Response time of {name} by location, {range_word}"),
        phase_charts=phase_charts(series, label=f"Timing phases of {name}"),
        uptime=uptime,
        uptime_bars=uptime_bars(uptime, label=f"Daily uptime of {name}, last {UPTIME_DAYS} days"),
        incidents=incidents,
        incident_rows=[incident_row(incident) for incident in incidents["data"]],
        certificates=certificate_groups(certificate.get("certificates")),
        alerts=alerts,
        query=query,
        nav="/",
        **_results_values(monitor, results, results_filters, query),
    )


def _results_values(monitor: dict, results: dict, filters: dict, query: dict) -> dict[str, Any]:
    locations = _configured_locations(monitor)
    for result in results["data"]:
        if result["location"] not in locations:
            locations.append(result["location"])
    if filters.get("location") and filters["location"] not in locations:
        locations.append(filters["location"])
    return {
        "monitor": monitor,
        "results": results,
        "result_rows": [result_row(result) for result in results["data"]],
        "results_filters": filters,
        "result_locations": locations,
        "range_query": query["range"],
        "synthetic": monitor["type"] == "synthetic_test",
    }


# ------------------------------------------------------------------------------------------- shaping replies


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _configured_locations(monitor: dict) -> list[str]:
    config = monitor.get("locationConfig") or {}
    chosen = config.get("locations") if isinstance(config, dict) else None
    return list(chosen) if isinstance(chosen, list) else []


def location_rows(monitor: dict, run: dict | None, stats: dict) -> list[dict[str, Any]]:
    """Each location's status in the last run, with its figures over the last STATS_DAYS days. A location the
    finalized run got nothing from reads "missing"; while the run is still out, and without a run, a location
    shows its latest result of those days ("pending" or "unknown" without one)."""
    figures = {stat["location"]: stat for stat in stats["data"]}
    in_run = {result["location"]: result for result in (run or {}).get("results", [])}
    missing = set((run or {}).get("missingLocations") or []) if (run or {}).get("finalizedAt") else set()
    expected = set((run or {}).get("expectedLocations") or [])
    order = list((run or {}).get("expectedLocations") or [])
    for location in [*_configured_locations(monitor), *figures, *in_run]:
        if location not in order:
            order.append(location)
    rows = []
    for location in order:
        stat = figures.get(location) or {}
        latest = in_run.get(location) or stat.get("latest")
        if location in in_run:
            status = in_run[location]["status"]
        elif location in missing:
            status = "missing"
        elif latest is not None:
            status = latest["status"]
        else:
            status = "pending" if location in expected else "unknown"
        rows.append(
            {
                "location": location,
                "status": status,
                "result": latest,
                "uptime": stat.get("uptimePercentage"),
                "avg": stat.get("avgResponseTime"),
                "p95": stat.get("p95ResponseTime"),
                "checks": stat.get("totalChecks", 0),
            }
        )
    return rows


def response_chart(series: dict, *, label: str) -> Markup:
    bucketed = series.get("bucketSeconds") is not None
    points = {
        line["location"]: [
            (
                _time(point["t"]),
                point["avgMs"],
                {"p95": point["p95Ms"], "checks": point["checks"]} if bucketed else None,
            )
            for point in line["points"]
        ]
        for line in series["locations"]
    }
    start, end = _time(series["since"]), _time(series["until"])
    if bucketed:
        # The axis ends where the last bucket starts (the points sit at their buckets' starts): a 24-hour range
        # then spans 24 hours exactly, not 24 and a partial bucket, and charts.py labels it by the hour.
        bucket = timedelta(seconds=series["bucketSeconds"])
        end = start + ((end - start) // bucket) * bucket
    return charts.response_time_chart(points, start=start, end=end, label=label)


def phase_charts(series: dict, *, label: str) -> list[tuple[str, Markup]]:
    """One stacked chart per location that has phases (a location's phases do not add up with another's)."""
    drawn = []
    for line in series["locations"]:
        buckets = [
            (
                _time(phase["t"]),
                {
                    "dns": phase["dnsMs"],
                    "connect": phase["connectMs"],
                    "tls": phase["tlsMs"],
                    "firstByte": phase["firstByteMs"],
                },
            )
            for phase in line["phases"]
        ]
        if buckets:
            drawn.append(
                (line["location"], charts.phases_chart(buckets, label=f"{label}, {line['location']}"))
            )
    return drawn


def uptime_bars(report: dict, *, label: str) -> Markup:
    """UPTIME_DAYS bars ending on the report's last UTC day; a day the API has no checks for reads "no data"."""
    by_day = {day["day"]: day for day in report["days"]}
    last = _time(report["until"]).astimezone(UTC).date()
    days = []
    for offset in range(UPTIME_DAYS - 1, -1, -1):
        day = last - timedelta(days=offset)
        found = by_day.get(day.isoformat())
        days.append(
            {"day": day, "uptime": found["uptimePercentage"], "checks": found["checks"]}
            if found
            else {"day": day, "uptime": None}
        )
    return charts.daily_bars(days, label=label)


def duration(seconds: float) -> str:
    """ "45 s", "12 min", "3 h 05 min", "2 d 4 h": the two largest units."""
    seconds = max(int(math.floor(seconds)), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def incident_row(incident: dict) -> dict[str, Any]:
    return {**incident, "duration": duration(incident["durationSeconds"]), "ongoing": not incident["endedAt"]}


def result_row(result: dict) -> dict[str, Any]:
    details = result.get("details") or {}
    stored = details.get("artifacts") if isinstance(details.get("artifacts"), dict) else {}
    # through the API door, which answers a short-lived presigned link: the bucket may stay private
    door = f"{BASE_PATH}/api/monitors/{result['monitorId']}/results/{result['id']}/artifacts"
    artifacts = [(title, f"{door}/{name}") for name, title in ARTIFACTS if isinstance(stored.get(name), str)]
    return {
        **result,
        "artifacts": artifacts,
        "artifacts_note": details.get("artifactsSkipped") or details.get("artifactsError"),
        "test_error": details.get("errorMessage"),
    }


def certificate_groups(certificates: list[dict] | None) -> list[dict[str, Any]] | None:
    """The certificates the locations read, one entry per distinct certificate with the locations that saw it;
    None when the monitor has no TLS (the section is then left out)."""
    if certificates is None:
        return None
    groups: dict[str, dict[str, Any]] = {}
    for certificate in certificates:
        key = certificate.get("sha256Fingerprint") or certificate["location"]
        group = groups.setdefault(
            key, {**certificate, "locations": [], "state": certificate_state(certificate)}
        )
        group["locations"].append(certificate["location"])
        if _time(certificate["checkedAt"]) > _time(group["checkedAt"]):
            group["checkedAt"] = certificate["checkedAt"]
    return sorted(groups.values(), key=lambda group: group.get("notAfter") or "")


def certificate_state(certificate: dict) -> str:
    days = certificate.get("daysRemaining")
    if certificate.get("expired") or (days is not None and days <= 0):
        return "expired"
    if days is not None and days <= 14:
        return "expiring"
    return "valid"
