"""The overdue sweep (aggregate's cron call): heartbeats whose alarm has passed get a down run, written once.

One query finds a batch of overdue heartbeats (heartbeats_alarm index), locked SKIP LOCKED so overlapping sweeps
share the work; one statement writes their runs, results and next alarms. A down run is keyed by the moment it
stands for, (monitor_id, scheduled_at = the missed due time, or the unended start): a sweep run twice, or after a
crash before its announcements, writes it once, and runs' deadlines finalize one never announced. An overdue
heartbeat is found by the first sweep after its alarm, so at most one sweep interval late (a minute under
stack.yml's cron), plus a batch's time when more than BATCH are overdue at once.

Pings reach the database through sc:pings (shared/heartbeats/intake.py), so a ping may be accepted and not yet
written: the sweep calls a heartbeat overdue only if its alarm passed before the oldest ping still queued. While
aggregate or the connector is behind, alarms wait; none is raised for a job that did ping in time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from psycopg.types.json import Jsonb
from redis.exceptions import ResponseError

from shared import db, streams
from shared.heartbeats.ping import HEARTBEAT_LOCATION, PingEnvelope
from shared.heartbeats.record import LATE_PING
from shared.models import ResultEnvelope
from shared.redis import get_redis, publish, publish_live_events
from shared.rules.heartbeats import Alarm, HeartbeatSchedule, alarm, overdue_message

BATCH = 1000
_MAX_BATCHES = 20  # a sweep's bounded work: the rest waits for the next cron call

_OVERDUE = """
select h.monitor_id, h.alarm_at, h.alarm_due, h.alarm_reason, h.open_start_at, m.config
from heartbeats h join monitors m on m.id = h.monitor_id
where h.alarm_at <= %(until)s and m.enabled
order by h.alarm_at
limit %(limit)s
for no key update of h skip locked
"""

_WRITE_DOWN_RUNS = """
with fired as (
    select * from unnest(%(monitor_ids)s::uuid[], %(run_ids)s::uuid[], %(dues)s::timestamptz[],
                         %(messages)s::text[], %(details)s::jsonb[], %(next_at)s::timestamptz[],
                         %(next_due)s::timestamptz[], %(next_reason)s::text[], %(clears_start)s::bool[])
        as f(monitor_id, run_id, due, message, details, next_at, next_due, next_reason, clears_start)
),
run as (
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
    select f.run_id, f.monitor_id, f.due, array[%(location)s], %(now)s from fired f
    on conflict (monitor_id, scheduled_at) do nothing
    returning id, monitor_id
),
result as (
    insert into monitor_results (run_id, monitor_id, location, status, checked_at, message, details,
                                 is_status_change)
    select run.id, run.monitor_id, %(location)s, 'down', %(now)s, f.message, f.details,
        'down' is distinct from (
            select p.status from monitor_results p
            where p.monitor_id = run.monitor_id and p.location = %(location)s
            order by p.checked_at desc limit 1)
    from run join fired f on f.run_id = run.id
    returning run_id, monitor_id
),
advanced as (
    update heartbeats h
    set alarm_at = f.next_at, alarm_due = f.next_due, alarm_reason = f.next_reason, updated_at = %(now)s,
        open_start_at = case when f.clears_start then null else h.open_start_at end,
        open_start_rid = case when f.clears_start then null else h.open_start_rid end
    from fired f where h.monitor_id = f.monitor_id
)
select run_id, monitor_id from result
"""


def _next_alarm(
    schedule: HeartbeatSchedule, fired: Alarm, open_start_at: datetime | None, now: datetime
) -> Alarm:
    """After a fired alarm the heartbeat is next due one slot after what it missed, or after now less grace if
    that is later: slots missed while nothing swept collapse into the one down run, as schedule's do."""
    reference = max(fired.due, now - schedule.grace)
    start = None if fired.reason == "unfinished" else open_start_at
    return alarm(schedule, reference, start)


def _fired(rows: list[dict], now: datetime) -> dict[str, list]:
    columns: dict[str, list] = {
        name: []
        for name in (
            "monitor_ids run_ids dues messages details next_at next_due next_reason clears_start".split()
        )
    }
    for row in rows:
        schedule = HeartbeatSchedule.from_config(row["config"])
        current = Alarm(row["alarm_at"], row["alarm_due"], row["alarm_reason"])
        upcoming = _next_alarm(schedule, current, row["open_start_at"], now)
        details = {
            "overdue": current.reason,
            "alarmAt": current.at.isoformat(),
            "dueAt": current.due.isoformat(),
        }
        for name, value in (
            ("monitor_ids", row["monitor_id"]),
            ("run_ids", uuid.uuid4()),
            ("dues", current.due),
            ("messages", overdue_message(current, schedule)),
            ("details", Jsonb(details)),
            ("next_at", upcoming.at),
            ("next_due", upcoming.due),
            ("next_reason", upcoming.reason),
            ("clears_start", current.reason == "unfinished"),
        ):
            columns[name].append(value)
    return columns


async def _sweep_batch(now: datetime, until: datetime) -> tuple[int, list[tuple[uuid.UUID, uuid.UUID]]]:
    """One batch: how many heartbeats overdue before `until` it took, and the (run, monitor) of the down runs it
    wrote."""
    async with db.transaction() as conn:
        rows = await (await conn.execute(_OVERDUE, {"until": until, "limit": BATCH})).fetchall()
        if not rows:
            return 0, []
        params = {**_fired(rows, now), "now": now, "location": HEARTBEAT_LOCATION}
        written = await (await conn.execute(_WRITE_DOWN_RUNS, params)).fetchall()
    return len(rows), [(row["run_id"], row["monitor_id"]) for row in written]


async def sweep_overdue_heartbeats(now: datetime | None = None) -> int:
    """Writes a down run for each overdue heartbeat and announces it on sc:results; returns how many it wrote."""
    now = now or datetime.now(UTC)
    until = min(now, await pings_written_until())
    total = 0
    for _ in range(_MAX_BATCHES):
        taken, runs = await _sweep_batch(now, until)
        await _announce(runs, now)
        total += len(runs)
        if taken < BATCH:
            break
    return total


async def pings_written_until() -> datetime:
    """Every ping accepted before this moment is written: the arrival of the oldest sc:pings entry the connector's
    group has not acknowledged (pending, or not yet delivered; the first entry when no group reads it yet), less
    the interleaving of several ping functions' entries; the far future when nothing is queued."""
    client = get_redis()
    stream = streams.PINGS_STREAM
    try:
        groups = await client.xinfo_groups(stream)
    except ResponseError:  # no stream yet: nothing was ever queued
        return _NOTHING_QUEUED
    queued: list[str] = []
    ours = [group for group in groups if group["name"] == streams.CONSUMER_GROUP]
    if not ours:
        queued += [entry_id for entry_id, _ in await client.xrange(stream, count=1)]
    for group in ours:
        if int(group["pending"]):
            queued.append((await client.xpending(stream, group["name"]))["min"])
        after = await client.xrange(stream, min="(" + group["last-delivered-id"], count=1)
        queued += [entry_id for entry_id, _ in after]
    if not queued:
        return _NOTHING_QUEUED
    oldest = min(queued, key=lambda entry_id: tuple(map(int, entry_id.split("-"))))
    entries = await client.xrange(stream, min=oldest, max=oldest)
    try:
        arrived = PingEnvelope.model_validate(streams.decode(entries[0][1])).received_at
    except Exception:  # trimmed meanwhile, or not a ping (it goes to the dead letters): Redis's own clock
        arrived = datetime.fromtimestamp(int(oldest.split("-")[0]) / 1000, UTC)
    return arrived - LATE_PING


_NOTHING_QUEUED = datetime.max.replace(tzinfo=UTC)


async def _announce(runs: list[tuple[uuid.UUID, uuid.UUID]], now: datetime) -> None:
    if not runs:
        return
    await publish(
        (
            streams.RESULTS_STREAM,
            ResultEnvelope(run_id=run_id, monitor_id=monitor_id, location=HEARTBEAT_LOCATION, status="down"),
        )
        for run_id, monitor_id in runs
    )
    await publish_live_events(
        {
            "type": "result",
            "monitorId": monitor_id,
            "runId": run_id,
            "location": HEARTBEAT_LOCATION,
            "status": "down",
            "responseTimeMs": None,
            "checkedAt": now.isoformat(),
        }
        for run_id, monitor_id in runs
    )
