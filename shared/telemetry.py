"""The pipeline's own counters and histograms, kept in Redis by the functions as they work, so the metrics
function exposes totals summed over every replica and region without one query per monitor or per run.

Writers gather what one call did in a `Tally` and write it with `await tally.flush()` after their commit: one
round trip (a script of HINCRBY/HINCRBYFLOAT), best effort (a Redis that refuses is logged and counted, never
raised, because the work it describes has happened). Every metric is declared once, in `METRICS`; the metrics
function reads the same table (shared/metrics/) to turn the hashes back into Prometheus families.

Storage: one hash per metric, `sc:telemetry:<metric>`. A field is the label values joined by FIELD_SEPARATOR in
the spec's label order; a histogram's fields add a part after PART_SEPARATOR: `sum`, `count`, or `b<i>` for the
observations that fell in bucket i (not cumulative: the reader accumulates).
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shared.streams import PREFIX

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("supercheck.telemetry")

TELEMETRY_PREFIX = f"{PREFIX}:telemetry:"
FIELD_SEPARATOR = "\x1f"
PART_SEPARATOR = "\x1e"

# Seconds: from a 5 ms loopback check to a two-minute synthetic journey.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Seconds late: a healthy pipeline starts checks within tens of milliseconds of their slot.
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass(frozen=True)
class MetricSpec:
    """One metric as writers record it and the metrics function exposes it (name without the _total suffix a
    counter's samples get)."""

    name: str
    kind: Literal["counter", "histogram"]
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    # "monitor": the first label is monitor_id, and a project's key sees its own monitors' series (the metrics
    # function adds monitor_name, type and project); "pipeline": the operator token only.
    scope: Literal["pipeline", "monitor"] = "pipeline"

    @property
    def key(self) -> str:
        return TELEMETRY_PREFIX + self.name


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {spec.name: spec for spec in specs}


METRICS: dict[str, MetricSpec] = _specs(
    MetricSpec(
        "supercheck_monitor_checks",
        "counter",
        "Checks stored per monitor and location, by result status.",
        ("monitor_id", "location", "result"),
        scope="monitor",
    ),
    MetricSpec(
        "supercheck_monitor_alerts",
        "counter",
        "Alert deliveries per monitor, by alert kind and delivery outcome.",
        ("monitor_id", "kind", "outcome"),
        scope="monitor",
    ),
    MetricSpec(
        "supercheck_schedule_lag_seconds",
        "histogram",
        "From a run's due time to its check starting, per check type and location.",
        ("type", "location"),
        LAG_BUCKETS,
    ),
    MetricSpec(
        "supercheck_schedule_runs",
        "counter",
        "Scheduler ticks' work by stage: due (monitors found due and claimed by a tick; those another tick holds"
        " are counted by that tick), recorded (runs recorded for them), dispatched (runs whose jobs were"
        " published), redispatched (runs the outbox sweep published again).",
        ("stage",),
    ),
    MetricSpec("supercheck_schedule_ticks", "counter", "Scheduler ticks run.", ()),
    MetricSpec(
        "supercheck_check_duration_seconds",
        "histogram",
        "How long checks took, per check type and location.",
        ("type", "location"),
        DURATION_BUCKETS,
    ),
    MetricSpec(
        "supercheck_connector_deliveries",
        "counter",
        "Messages the connector delivered, by its region (WORKER_LOCATION, or all), function and outcome: ok"
        " (acknowledged after the function's 2xx), error (the POST failed or was refused: left pending, delivered"
        " again), unfinished (answered but left for the next delivery), dead_letter (moved to <stream>:dead).",
        ("region", "function", "outcome"),
    ),
    MetricSpec(
        "supercheck_runs_finalized",
        "counter",
        "Runs finalized by aggregate; late=true when finalized at the deadline without every location.",
        ("late",),
    ),
    MetricSpec(
        "supercheck_run_missing_locations",
        "counter",
        "Locations that never reported before their run's deadline.",
        ("location",),
    ),
    MetricSpec(
        "supercheck_alert_deliveries",
        "counter",
        "Alert deliveries by provider type and outcome.",
        ("provider_type", "outcome"),
    ),
    MetricSpec(
        "supercheck_cleanup_deleted_rows",
        "counter",
        "Rows deleted by cleanup, per table.",
        ("table",),
    ),
)


def _field(spec: MetricSpec, labels: dict[str, object]) -> str:
    if set(labels) != set(spec.labels):
        raise ValueError(f"{spec.name} takes labels {spec.labels}, got {tuple(sorted(labels))}")
    return FIELD_SEPARATOR.join(str(labels[name]) for name in spec.labels)


# KEYS: the hashes; ARGV: (position in KEYS, field, amount) triples. One command however many fields: a check
# batch touches a field per monitor, and a pipeline of one HINCRBY each cost more than the checks' own bookkeeping.
# Whole amounts stay integers (HINCRBY); others go through HINCRBYFLOAT.
_INCREMENT = """
for i = 1, #ARGV, 3 do
    if string.find(ARGV[i + 2], '[%.eE]') then
        redis.call('HINCRBYFLOAT', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
    else
        redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
    end
end
return #ARGV / 3
"""


@dataclass
class TelemetryStats:
    """Flushes this process could not write (read by tests and logs)."""

    dropped_flushes: int = 0


telemetry_stats = TelemetryStats()


@dataclass
class Tally:
    """What one call did, gathered in memory and written in one round trip."""

    counts: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))

    def count(self, metric: str, amount: float = 1, **labels: object) -> None:
        spec = METRICS[metric]
        if spec.kind != "counter":
            raise ValueError(f"{metric} is a {spec.kind}, not a counter")
        if amount:
            self.counts[(spec.key, _field(spec, labels))] += amount

    def observe(self, metric: str, value: float, **labels: object) -> None:
        spec = METRICS[metric]
        if spec.kind != "histogram":
            raise ValueError(f"{metric} is a {spec.kind}, not a histogram")
        series = _field(spec, labels)
        bucket = bisect.bisect_left(spec.buckets, value)  # value <= buckets[i]; len(buckets) means +Inf only
        self.counts[(spec.key, f"{series}{PART_SEPARATOR}count")] += 1
        self.counts[(spec.key, f"{series}{PART_SEPARATOR}sum")] += value
        if bucket < len(spec.buckets):
            self.counts[(spec.key, f"{series}{PART_SEPARATOR}b{bucket}")] += 1

    def __bool__(self) -> bool:
        return bool(self.counts)

    async def flush(self, redis_url: str | None = None, client: aioredis.Redis | None = None) -> bool:
        """Writes and clears what was gathered, to `client` (the connector's own) or the Redis at redis_url
        (REDIS_URL by default); False (logged, counted) when Redis refused it."""
        if not self.counts:
            return True
        import redis.exceptions

        from shared.redis import get_redis

        counts, self.counts = self.counts, defaultdict(float)
        keys = list(dict.fromkeys(key for key, _ in counts))
        position = {key: str(index) for index, key in enumerate(keys, start=1)}
        updates: list[str] = []
        for (key, name), amount in counts.items():
            updates += (position[key], name, str(int(amount)) if float(amount).is_integer() else repr(amount))
        try:
            await (client or get_redis(redis_url)).eval(_INCREMENT, len(keys), *keys, *updates)
        except (redis.exceptions.RedisError, OSError) as error:
            telemetry_stats.dropped_flushes += 1
            log.warning("dropped %d telemetry update(s), Redis refused them: %s", len(counts), error)
            return False
        return True


@dataclass(frozen=True)
class HistogramValue:
    buckets: list[tuple[str, float]]  # cumulative, ending with +Inf, as prometheus_client takes them
    sum: float


def read_counter(spec: MetricSpec, stored: dict[str, str]) -> dict[tuple[str, ...], float]:
    """A counter's hash as {label values: total}; fields of another shape (a relabelled spec) are skipped."""
    values: dict[tuple[str, ...], float] = {}
    for name, raw in stored.items():
        labels = tuple(name.split(FIELD_SEPARATOR)) if spec.labels else ()
        if len(labels) == len(spec.labels) and PART_SEPARATOR not in name:
            values[labels] = values.get(labels, 0.0) + float(raw)
    return values


def read_histogram(spec: MetricSpec, stored: dict[str, str]) -> dict[tuple[str, ...], HistogramValue]:
    """A histogram's hash as {label values: cumulative buckets and sum}."""
    parts: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for name, raw in stored.items():
        series, _, part = name.rpartition(PART_SEPARATOR)
        labels = tuple(series.split(FIELD_SEPARATOR)) if spec.labels else ()
        if part and len(labels) == len(spec.labels):
            parts[labels][part] = parts[labels].get(part, 0.0) + float(raw)
    values: dict[tuple[str, ...], HistogramValue] = {}
    for labels, found in parts.items():
        running = 0.0
        buckets: list[tuple[str, float]] = []
        for index, bound in enumerate(spec.buckets):
            running += found.get(f"b{index}", 0.0)
            buckets.append((_bound(bound), running))
        buckets.append(("+Inf", max(running, found.get("count", 0.0))))
        values[labels] = HistogramValue(buckets, found.get("sum", 0.0))
    return values


def _bound(bound: float) -> str:
    return repr(float(bound))


def merge_hashes(stored: list[dict[str, str]]) -> dict[str, str]:
    """The same metric's hashes from several Redis servers (the primary and regional ones), summed per field."""
    if len(stored) == 1:
        return stored[0]
    total: dict[str, float] = defaultdict(float)
    for one in stored:
        for name, raw in one.items():
            total[name] += float(raw)
    return {name: repr(value) for name, value in total.items()}
