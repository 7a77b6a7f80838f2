"""Which function serves which stream, and how much of a stream one POST or one entry carries: read by the
connector (openfaas/connector) to route its reads, and by schedule to size its bundles."""

from __future__ import annotations

from collections.abc import Iterable

from shared.checks import CHECK_TYPES
from shared.settings import get_settings
from shared.streams import ALERTS_STREAM, PINGS_STREAM, RESULTS_STREAM, job_stream, parse_job_stream

PIPELINE_FUNCTION_BY_STREAM: dict[str, str] = {
    RESULTS_STREAM: "aggregate",
    PINGS_STREAM: "aggregate",
    ALERTS_STREAM: "alert",
}

# Streams whose entries must be applied in the order they were added: the connector reads each in a loop of its
# own and posts its next batch only once the last is answered. A heartbeat's pings move its state one after
# another (a start, then its end).
ORDERED_STREAMS = frozenset({PINGS_STREAM})

# Streams whose entries the connector deletes as it acknowledges them (other streams keep theirs for
# MONITOR_STREAM_RETENTION_HOURS, to look back at): a ping is a database row once acknowledged, and every
# heartbeat's pings kept for a day, bodies of up to 100 KB included, would fill Redis's memory.
DELETED_WHEN_ACKNOWLEDGED = frozenset({PINGS_STREAM})


def function_for_stream(stream: str) -> str | None:
    parsed = parse_job_stream(stream)
    if parsed:
        check_type = CHECK_TYPES.get(parsed[0])
        return check_type.function if check_type else None
    return PIPELINE_FUNCTION_BY_STREAM.get(stream)


def max_batch_for_stream(stream: str) -> int | None:
    """A check type's own cap on jobs per POST (None: the connector's batch size)."""
    parsed = parse_job_stream(stream)
    if not parsed:
        return None
    check_type = CHECK_TYPES.get(parsed[0])
    return check_type.max_batch if check_type else None


def jobs_per_entry(check_type: str) -> int:
    """How many jobs schedule bundles into one stream entry of this check type.

    A bundle is one connector POST's worth (CONNECTOR_BATCH_SIZE jobs), so bundling changes how many entries
    move through Redis, not how much work one function invocation gets. Types that cap their POSTs (browser
    journeys take minutes) get one job per entry: each journey is delivered, retried and dead-lettered alone.
    """
    known = CHECK_TYPES.get(check_type)
    if known is not None and known.max_batch is not None:
        return 1
    return get_settings().connector_batch_size


def streams_for_worker(location: str | None, locations: Iterable[str], include_pipeline: bool) -> list[str]:
    """A regional connector reads its own location's job streams; the primary also feeds aggregate and alert."""
    chosen = [location] if location else list(locations)
    streams = [job_stream(check_type, loc) for loc in chosen for check_type in CHECK_TYPES]
    if include_pipeline:
        streams += list(PIPELINE_FUNCTION_BY_STREAM)
    return streams
