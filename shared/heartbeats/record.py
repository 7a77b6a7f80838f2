"""Aggregate's part of a ping: the pings the ping function accepted (sc:pings, shared/heartbeats/intake.py)
written in the order they arrived, each once, and for a completion its run and result. A heartbeat's run has
one result, so it is complete when written: it is inserted finalized, with aggregate's own verdict, and its
monitor advanced (state, status changes, alerts) by aggregate's own code in the same transaction
(shared/pipeline/aggregate.py finalize_written).

A connector batch is one transaction, set-based: the batch's heartbeats locked, its pings, runs and results
inserted and each heartbeat's state after its last ping written by one statement, then the monitors advanced. The connector delivers sc:pings
one batch at a time (shared/pipeline/routing.py ORDERED_STREAMS), so two pings of a token are applied in the
order they came. A ping is written only if its token is its heartbeat's, or it arrived before the token's last
rotation (it waited in sc:pings meanwhile), once whatever the deliveries (its id is kept beside it), and a ping older than the
last one applied by more than LATE_PING (a redelivery after a failure) is kept but moves nothing: a heartbeat's
state, as a monitor's, only moves forward.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from psycopg import OperationalError
from psycopg.types.json import Jsonb
from starlette.responses import JSONResponse

from shared import db, streams
from shared.heartbeats.ping import HEARTBEAT_LOCATION, MAX_RESULT_MESSAGE, PingEnvelope
from shared.pipeline.aggregate import (
    announce_finalized,
    finalize_written,
    publish_pending_alerts,
    verdicts_of_complete_runs,
)
from shared.pipeline.batch import parse_batch
from shared.redis import get_redis
from shared.rules.heartbeats import Alarm, HeartbeatSchedule, OpenStart, alarm, ping_effect

log = logging.getLogger("supercheck.aggregate")
LATE_PING = timedelta(seconds=1)  # two ping functions' arrivals may interleave by this much in the stream
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class PingWritten:
    """A ping of the batch as written: the run it completed, if any."""

    monitor_id: uuid.UUID
    run_id: uuid.UUID | None = None
    status: str | None = None
    duration_ms: int | None = None
    checked_at: datetime | None = None


@dataclass(frozen=True)
class PingSkipped:
    """A ping not written: a retry or redelivery already counted, or its token no longer the heartbeat's."""

    reason: str


async def record_pings(pings: list[PingEnvelope]) -> list[PingWritten | PingSkipped | Exception]:
    """The batch's pings written, one outcome each in order. One transaction for the batch; if the database
    refuses it, each ping in its own, so a ping it refuses (an Exception: dead-lettered) fails alone. A database
    out of reach raises: nothing is acknowledged and the batch comes again."""
    if not pings:
        return []
    try:
        try:
            return await _record(pings, assume_new=True)
        except _AlreadyCounted:  # rolled back: done again, telling the counted ones apart first
            return await _record(pings, assume_new=False)
    except OperationalError:
        raise
    except Exception as error:
        if len(pings) == 1:
            return [error]
    outcomes: list[PingWritten | PingSkipped | Exception] = []
    for ping in pings:
        try:
            outcomes.extend(await _record([ping], assume_new=False))
        except OperationalError:
            raise
        except Exception as error:
            outcomes.append(error)
    return outcomes


# The batch's heartbeats, locked in one order (monitor id) so two batches never wait on each other in a cycle,
# each with its last result's status (the first result's is_status_change).
_LOCK_HEARTBEATS = """
select h.monitor_id, h.token_hash, h.token_rotated_at, h.last_completed_at, h.open_start_at, h.open_start_rid,
       h.last_ping_at, m.config, m.enabled, m.created_at, m.location_config::text as location_config,
       (select p.status from monitor_results p
        where p.monitor_id = h.monitor_id and p.location = %(location)s
        order by p.checked_at desc limit 1) as last_status
from heartbeats h join monitors m on m.id = h.monitor_id
where h.monitor_id = any(%(monitors)s)
order by h.monitor_id
for no key update of h
"""


class _AlreadyCounted(Exception):
    """A batch written as if all its pings were new held one already counted: its transaction is undone."""


# Keys already counted among those the batch carries (under the heartbeats' locks: no ping of theirs is written
# meanwhile): a retry's, or a redelivered entry's own id.
_COUNTED_KEYS = """
select monitor_id, idempotency_key from heartbeat_pings
where (monitor_id, idempotency_key) in (select * from unnest(%(monitors)s::uuid[], %(keys)s::text[]))
"""

# One statement for the batch: its pings in arrival order, the runs and results of those that complete a job,
# each heartbeat's state after its last ping, and how many pings were stored: one already counted is skipped by
# the insert (and its batch, written as if all were new, undone and done again; see _record).
_RECORD = """
with ping as (
    select * from jsonb_to_recordset(%(pings)s) as p(
        position int, monitor_id uuid, kind text, source text, exit_status int, rid text, dedupe text,
        at timestamptz, duration int, message text, run_id uuid, status text, result_message text,
        details jsonb, is_status_change bool, run_status text, run_partial bool)
),
stored as (
    insert into heartbeat_pings (monitor_id, kind, source, exit_status, rid, idempotency_key, received_at,
                                 duration_ms, message, run_id)
    select monitor_id, kind, source, exit_status, rid, dedupe, at, duration, message, run_id
    from ping order by position
    on conflict (monitor_id, idempotency_key) do nothing
    returning 1
),
run as (
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status, is_partial)
    select run_id, monitor_id, at, array[%(location)s], at, %(now)s, run_status, run_partial
    from ping where run_id is not null
    on conflict (monitor_id, scheduled_at) do nothing
    returning id
),
result as (
    insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms, message,
                                 details, is_status_change)
    select ping.run_id, ping.monitor_id, %(location)s, ping.status, ping.at, ping.duration,
        ping.result_message, ping.details, ping.is_status_change
    from ping join run on run.id = ping.run_id
    returning run_id
),
advanced as (
    update heartbeats h set
        last_completed_at = s.last_completed_at, last_success_at = coalesce(s.last_success_at, h.last_success_at),
        open_start_at = s.open_start_at, open_start_rid = s.open_start_rid,
        alarm_at = s.alarm_at, alarm_due = s.alarm_due, alarm_reason = s.alarm_reason,
        last_ping_at = s.last_ping_at, updated_at = now()
    from jsonb_to_recordset(%(states)s) as s(
        monitor_id uuid, last_completed_at timestamptz, last_success_at timestamptz, open_start_at timestamptz,
        open_start_rid text, alarm_at timestamptz, alarm_due timestamptz, alarm_reason text,
        last_ping_at timestamptz)
    where h.monitor_id = s.monitor_id
)
select run_id, (select count(*) from stored) as stored from result
union all select null, (select count(*) from stored)
"""


@dataclass
class _HeartbeatState:
    """A locked heartbeat as the batch's pings move it, one after another."""

    monitor_id: uuid.UUID
    token_hash_hex: str
    token_rotated_at: datetime | None
    schedule: HeartbeatSchedule
    enabled: bool
    created_at: datetime
    location_config: str
    last_completed_at: datetime | None
    open_start: OpenStart | None
    last_status: str | None
    last_ping_at: datetime | None  # the last ping applied, by this batch or before it
    moved: bool = False
    last_success_at: datetime | None = None
    upcoming: Alarm | None = None

    @classmethod
    def of(cls, row: dict) -> _HeartbeatState:
        open_start = OpenStart(row["open_start_at"], row["open_start_rid"]) if row["open_start_at"] else None
        return cls(
            row["monitor_id"],
            bytes(row["token_hash"]).hex(),
            row["token_rotated_at"],
            HeartbeatSchedule.from_config(row["config"]),
            row["enabled"],
            row["created_at"],
            row["location_config"],
            row["last_completed_at"],
            open_start,
            row["last_status"],
            row["last_ping_at"],
        )

    def token_valid_for(self, ping: PingEnvelope) -> bool:
        """The ping's token is the heartbeat's, or was when the ping arrived (it waited in sc:pings meanwhile)."""
        if ping.token_hash == self.token_hash_hex:
            return True
        return self.token_rotated_at is not None and ping.received_at < self.token_rotated_at

    def stored(self) -> dict:
        return {
            "monitor_id": str(self.monitor_id),
            "last_completed_at": _iso(self.last_completed_at),
            "last_success_at": _iso(self.last_success_at),
            "open_start_at": _iso(self.open_start.at if self.open_start else None),
            "open_start_rid": self.open_start.rid if self.open_start else None,
            "alarm_at": _iso(self.upcoming.at),
            "alarm_due": _iso(self.upcoming.due),
            "alarm_reason": self.upcoming.reason,
            "last_ping_at": _iso(self.last_ping_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def _record(pings: list[PingEnvelope], assume_new: bool) -> list[PingWritten | PingSkipped]:
    """assume_new: the batch written as if no ping of it were counted yet, a query less; if one was, the
    insert skips it, and _AlreadyCounted undoes the batch. A redelivery or a late retry is rare."""
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                _LOCK_HEARTBEATS,
                {"monitors": list({p.monitor_id for p in pings}), "location": HEARTBEAT_LOCATION},
            )
        ).fetchall()
        states = {row["monitor_id"]: _HeartbeatState.of(row) for row in rows}
        counted = set() if assume_new else await _counted_keys(conn, pings)
        outcomes, params, runs = _apply_batch(pings, states, counted)
        if not params:
            return outcomes
        verdicts, problems = verdicts_of_complete_runs(runs)
        for row in params:
            if row["run_id"] is not None:
                verdict = verdicts[uuid.UUID(row["run_id"])]
                row["run_status"], row["run_partial"] = verdict.status, verdict.is_partial
        inserted = await (
            await conn.execute(
                _RECORD,
                {
                    "pings": Jsonb(params),
                    "states": Jsonb([s.stored() for s in states.values() if s.moved]),
                    "location": HEARTBEAT_LOCATION,
                    "now": now,
                },
            )
        ).fetchall()
        if assume_new and inserted[0]["stored"] < len(params):
            raise _AlreadyCounted
        # a run another writer holds at the same moment (the sweep's, to the microsecond) is not this ping's
        kept = {row["run_id"] for row in inserted if row["run_id"] is not None}
        runs = [run for run in runs if run["id"] in kept]
        effects = await finalize_written(conn, runs, verdicts, problems, now)
    await announce_finalized(runs, verdicts, effects)
    if effects.alerts:  # only this transaction's runs are here, so only alerts it queued can be pending
        await publish_pending_alerts([run["id"] for run in runs])
    outcomes = [
        replace(outcome, run_id=None)
        if isinstance(outcome, PingWritten) and outcome.run_id and outcome.run_id not in kept
        else outcome
        for outcome in outcomes
    ]
    await _publish_results([o for o in outcomes if isinstance(o, PingWritten) and o.run_id is not None])
    return outcomes


def _apply_batch(
    pings: list[PingEnvelope], states: dict[uuid.UUID, _HeartbeatState], counted: set[tuple[uuid.UUID, str]]
) -> tuple[list[PingWritten | PingSkipped], list[dict], list[dict]]:
    """The batch's pings applied in order: each one's outcome, the rows to write, and the runs they complete."""
    outcomes: list[PingWritten | PingSkipped] = []
    params: list[dict] = []
    runs: list[dict] = []
    for ping in pings:
        state = states.get(ping.monitor_id)
        if state is None:
            outcomes.append(PingSkipped("its monitor is no longer a heartbeat"))
            continue
        if not state.token_valid_for(ping):
            outcomes.append(PingSkipped("it came after its token was rotated"))
            continue
        key = ping.stored_key()
        if (ping.monitor_id, key) in counted:
            outcomes.append(PingSkipped("already counted"))
            continue
        counted.add((ping.monitor_id, key))
        written, row = _apply(ping, state)
        params.append({**row, "position": len(params)})
        outcomes.append(written)
        if written.run_id is not None:
            runs.append(_run_of(written, state))
    return outcomes, params, runs


def _run_of(written: PingWritten, state: _HeartbeatState) -> dict:
    """The run a completing ping writes, as aggregate reads a run it finalizes (its one result in it)."""
    return {
        "id": written.run_id,
        "monitor_id": written.monitor_id,
        "scheduled_at": written.checked_at,
        "expected_locations": [HEARTBEAT_LOCATION],
        "locations": [HEARTBEAT_LOCATION],
        "statuses": [written.status],
        "location_config": state.location_config,
    }


async def _counted_keys(conn, pings: list[PingEnvelope]) -> set[tuple[uuid.UUID, str]]:
    rows = await (
        await conn.execute(
            _COUNTED_KEYS,
            {"monitors": [p.monitor_id for p in pings], "keys": [p.stored_key() for p in pings]},
        )
    ).fetchall()
    return {(row["monitor_id"], row["idempotency_key"]) for row in rows}


def _apply(ping: PingEnvelope, state: _HeartbeatState) -> tuple[PingWritten, dict]:
    """One ping on its heartbeat's state as the earlier pings left it: what it wrote and the row to write, and the
    state moved on. A late ping is kept as a row and moves nothing."""
    last = state.last_ping_at
    late = last is not None and ping.received_at < last - LATE_PING
    # each ping its own moment: a heartbeat's runs are unique on it, and two pings may share a microsecond
    at = ping.received_at if late or last is None or ping.received_at > last else last + _MICROSECOND
    rid = str(ping.rid) if ping.rid else None
    effect = ping_effect(ping.ping_kind, at, rid, state.open_start)
    status = None
    if not late:
        if effect.opens_start:
            state.open_start = OpenStart(at, rid)
        elif effect.closes_start:
            state.open_start = None
        if effect.completes:
            state.last_completed_at = at
        reference = state.last_completed_at or state.created_at
        state.upcoming = alarm(state.schedule, reference, state.open_start.at if state.open_start else None)
        state.last_ping_at, state.moved = at, True
        # a paused heartbeat keeps its pings, not their runs
        status = effect.status if effect.completes and state.enabled else None
    is_status_change = status is not None and status != state.last_status
    if status is not None:
        state.last_status = status
    if status == "up":
        state.last_success_at = at
    duration = round(ping.ping_ms) if ping.ping_ms is not None else effect.duration_ms
    details = {"source": ping.source, "kind": ping.ping_kind, "exitStatus": ping.exit_status, "rid": rid}
    run_id = uuid.uuid4() if status is not None else None
    row = {
        "monitor_id": str(state.monitor_id),
        "kind": ping.ping_kind,
        "source": ping.source,
        "exit_status": ping.exit_status,
        "rid": rid,
        "dedupe": ping.stored_key(),
        "at": at.isoformat(),
        "duration": duration,
        "message": ping.message,
        "run_id": str(run_id) if run_id else None,
        "status": status,
        "result_message": _result_message(ping, status),
        "details": {key: value for key, value in details.items() if value is not None},
        "is_status_change": is_status_change,
    }
    return PingWritten(state.monitor_id, run_id, status, duration, at), row


def _result_message(ping: PingEnvelope, status: str | None) -> str | None:
    if status is None:
        return None
    said = "Ping received" if status == "up" else "Job reported a failure"
    if ping.exit_status is not None:
        said += f" (exit status {ping.exit_status})"
    if ping.message:
        said += ": " + ping.message[:MAX_RESULT_MESSAGE]
    return said


async def _publish_results(completed: list[PingWritten]) -> None:
    """After commit, the results' live events (the dashboard's rows), in one round trip; best effort."""
    if not completed:
        return
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for written in completed:
                event = {
                    "type": "result",
                    "monitorId": str(written.monitor_id),
                    "runId": str(written.run_id),
                    "location": HEARTBEAT_LOCATION,
                    "status": written.status,
                    "responseTimeMs": written.duration_ms,
                    "checkedAt": written.checked_at.isoformat(),
                }
                pipe.xadd(
                    streams.LIVE_EVENTS_STREAM,
                    {streams.PAYLOAD_FIELD: json.dumps(event)},
                    maxlen=streams.LIVE_EVENTS_MAX_LENGTH,
                    approximate=True,
                )
            await pipe.execute()
    except Exception as error:  # by type only: a message could carry what the job printed
        log.warning("%d pings' live events were not published (%s)", len(completed), type(error).__name__)


async def record_ping_batch(data: dict) -> JSONResponse:
    """Aggregate's answer to a connector batch of sc:pings: every entry written, skipped as counted, or
    dead-lettered (it does not validate as a ping, or the database refused it alone)."""
    batch = parse_batch(data, PingEnvelope)
    outcomes = await record_pings(batch.items)
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Exception):
            # by type only: the database's text could quote what the job sent
            batch.refuse(index, f"the database refused the ping ({type(outcome).__name__})")
    return batch.reply(
        written=sum(isinstance(o, PingWritten) for o in outcomes),
        skipped=sum(isinstance(o, PingSkipped) for o in outcomes),
    )
