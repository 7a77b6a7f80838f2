"""Each region's connector heartbeat as Prometheus families: how old it is, what the connector says of itself,
and which check functions answered its probe (shared/pipeline/heartbeats.py writes and reads them)."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, Metric

from shared.pipeline.heartbeats import read_heartbeats
from shared.settings import get_settings


async def heartbeat_families() -> list[Metric]:
    beats = await read_heartbeats(get_settings().locations)
    age = GaugeMetricFamily(
        "supercheck_connector_heartbeat_age_seconds",
        "Seconds since the region's connector last wrote its heartbeat (absent: none, or its Redis is unreadable).",
        labels=("region",),
    )
    seen = GaugeMetricFamily(
        "supercheck_connector_heartbeat_present",
        "1 if the region's connector heartbeat could be read.",
        labels=("region",),
    )
    interval = GaugeMetricFamily(
        "supercheck_connector_heartbeat_interval_seconds",
        "The longest time between two heartbeats when all goes well, as the connector reports it.",
        labels=("region",),
    )
    healthy = GaugeMetricFamily(
        "supercheck_connector_ok",
        "1 if the region's connector reports all its loops running.",
        labels=("region",),
    )
    functions = GaugeMetricFamily(
        "supercheck_check_function_up",
        "1 if the region's connector reached the check function through its gateway at its last heartbeat.",
        labels=("region", "function"),
    )
    for region, beat in sorted(beats.items()):
        seen.add_metric([region], 0 if beat is None else 1)
        if beat is None:
            continue
        age.add_metric([region], beat.age_seconds())
        interval.add_metric([region], beat.interval_seconds)
        healthy.add_metric([region], 1 if beat.connector_status == "ok" else 0)
        for function, answered in sorted(beat.check_functions.items()):
            functions.add_metric([region, function], 1 if answered else 0)
    return [age, seen, interval, healthy, functions]
