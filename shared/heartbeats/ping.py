"""The ping function's work: a ping URL (Healthchecks' and Uptime Kuma's shapes) parsed and validated, rate
limited per token, and written once: the ping, and for a completion a run and its result, which this function
finalizes itself with aggregate's own code (shared/pipeline/aggregate.py). Used by functions/ping.

Pings a process receives while it writes are written together: one Redis round trip for their rate limits, one
transaction for all of them (set-based, applied in arrival order), one round trip for their live events, each
request answered once its batch has committed (shared/heartbeats/group_commit.py). A heartbeat's run has one
result, so it is complete when written: finalizing it here, batch after batch in the pings' order, spares the
trip through sc:results, the connector and the aggregate function, which was a third of the CPU a ping cost
(bench/ping_ingest.py). A batch whose finalizing fails is announced on sc:results for aggregate instead, and a
run neither finalized nor announced (the process stopped) is finalized at its deadline by aggregate's sweep.

Shapes, after /function/ping: /<token> (success), /<token>/start, /<token>/fail, /<token>/log,
/<token>/<exit status> (0 success, 1-255 failure), ?rid=<uuid> pairing a start with its end; and Kuma's
/api/push/<token>?status=up|down&msg=...&ping=<ms>. GET, HEAD and POST alike; a body up to 100 KB is the ping's
message. The token is the credential: it is never logged, echoed, stored or put in a Redis key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from psycopg.types.json import Jsonb
from pydantic import Field, ValidationError

from shared import db, streams
from shared.errors import describe_error
from shared.heartbeats.group_commit import group_commit_for
from shared.heartbeats.tokens import TOKEN_PATTERN, token_hash
from shared.models import ApiModel, ResultEnvelope
from shared.redis import get_redis
from shared.rules.heartbeats import (
    Alarm,
    HeartbeatSchedule,
    OpenStart,
    PingKind,
    alarm,
    kind_of_exit_status,
    ping_effect,
)
from shared.settings import get_settings

MAX_BODY_BYTES = 100 * 1024
MAX_RESULT_MESSAGE = 2000  # the result's message; the whole body stays on the ping
# A heartbeat's runs are single: its one location names the job pinging in, not a region checking.
HEARTBEAT_LOCATION = "heartbeat"
log = logging.getLogger("supercheck.ping")
_EXIT_STATUS = re.compile(r"-?\d{1,12}")


class PingRefused(Exception):
    """A ping answered with an error status (400, 404, 429) and a short text that never names the token."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text


class PingRequest(ApiModel):
    """One ping as the URL, query, headers and body give it."""

    token: str = Field(repr=False)
    source: Literal["healthchecks", "kuma"]
    kind: PingKind
    exit_status: int | None = Field(default=None, ge=0, le=255)
    rid: uuid.UUID | None = None
    message: str | None = Field(default=None, max_length=MAX_BODY_BYTES)
    # Kuma's ping=<ms>: the job's own measure of its duration
    ping_ms: float | None = Field(default=None, ge=0, le=365 * 86400 * 1000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    def dedupe_key(self) -> str | None:
        """What makes a retried ping the same ping: its Idempotency-Key, else its rid and kind."""
        if self.idempotency_key is not None:
            return f"key:{self.idempotency_key}"
        if self.rid is not None:
            return f"rid:{self.rid}:{self.kind}:{self.exit_status}"
        return None


class KumaQuery(ApiModel):
    status: Literal["up", "down"] = "up"
    msg: str | None = Field(default=None, max_length=MAX_BODY_BYTES)
    ping: float | None = Field(default=None, ge=0, le=365 * 86400 * 1000)


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _kind_of_suffix(suffix: str) -> tuple[PingKind, int | None]:
    if suffix in ("start", "fail", "log"):
        return suffix, None  # type: ignore[return-value]
    if _EXIT_STATUS.fullmatch(suffix):
        status = int(suffix)
        if not 0 <= status <= 255:
            raise PingRefused(400, "exit status must be 0-255")
        return kind_of_exit_status(status), status
    raise PingRefused(404, "not found")


def _validated(model: type[ApiModel], data: dict) -> ApiModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "request"
        raise PingRefused(400, f"{field}: {describe_error(first)}") from None


def parse_ping(path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> PingRequest:
    """The ping a request carries, or PingRefused: 404 for no token shape, 400 for a bad exit status or field."""
    parts = _segments(path)
    fields: dict = {"message": _text(body), "idempotencyKey": headers.get("idempotency-key")}
    if len(parts) == 3 and parts[:2] == ["api", "push"]:
        kuma = _validated(KumaQuery, {k: v for k, v in query.items() if k in ("status", "msg", "ping")})
        token = parts[2]
        fields |= {
            "source": "kuma",
            "kind": "success" if kuma.status == "up" else "fail",
            "message": _no_nul(kuma.msg) or fields["message"],
            "pingMs": kuma.ping,
        }
    elif len(parts) in (1, 2):
        token = parts[0]
        kind, exit_status = _kind_of_suffix(parts[1]) if len(parts) == 2 else ("success", None)
        fields |= {"source": "healthchecks", "kind": kind, "exitStatus": exit_status}
    else:
        raise PingRefused(404, "not found")
    if not TOKEN_PATTERN.fullmatch(token):
        raise PingRefused(404, "not found")
    if "rid" in query:
        fields["rid"] = query["rid"]
    return _validated(PingRequest, {"token": token, **fields})  # type: ignore[return-value]


def _text(body: bytes) -> str | None:
    """A body as the ping's message: its first 100 KB, as text PostgreSQL can hold (no NUL)."""
    if not body:
        return None
    return _no_nul(body[:MAX_BODY_BYTES].decode("utf-8", errors="replace"))


def _no_nul(text: str | None) -> str | None:
    """Text PostgreSQL can hold: it refuses NUL in text (and in jsonb), so one would fail the ping's batch."""
    return text.replace("\x00", "\ufffd") if text else text


@dataclass(frozen=True)
class PingReceipt:
    counted: bool  # False: a retry of a ping already counted
    run_id: uuid.UUID | None
    monitor_id: uuid.UUID
    status: str | None
    duration_ms: int | None = None
    checked_at: datetime | None = None


async def receive_ping(ping: PingRequest) -> PingReceipt:
    """Rate limits the ping and writes it once, with the pings this process receives meanwhile (group commit,
    shared/heartbeats/group_commit.py); answers once its batch has committed. PingRefused: 429 past the token's
    rate limit, 404 for a token no heartbeat has."""
    return await group_commit_for(_take_batch).submit(_Arrival(ping, datetime.now(UTC)))


@dataclass
class _Arrival:
    ping: PingRequest
    at: datetime
    token_hash: bytes = b""

    def __post_init__(self):
        self.token_hash = token_hash(self.ping.token)


async def _take_batch(arrivals: list[_Arrival]) -> list[PingReceipt | Exception]:
    """A batch's pings: the rate limits in one Redis round trip, the admitted ones written in one transaction,
    their runs announced in one more round trip after commit."""
    outcomes: list[PingReceipt | Exception] = list(await _rate_limited(arrivals))
    admitted = [index for index, outcome in enumerate(outcomes) if outcome is None]
    written = await _record_apart_if_need_be([arrivals[i] for i in admitted])
    for index, outcome in zip(admitted, written, strict=True):
        outcomes[index] = outcome
    completed = [o for o in outcomes if isinstance(o, PingReceipt) and o.run_id is not None]
    if completed:
        await _publish_results(completed)
        _finalize_soon(completed)
    return outcomes


# Finalizing tasks not yet done: kept so they are not collected mid-way, and so a test can wait for them.
_finalizing: set[asyncio.Future] = set()


def _finalize_soon(receipts: list[PingReceipt]) -> None:
    """The runs finalized after the answer has gone out, one batch at a time in the order of the pings (a run
    finalized after a later one of its monitor would count as late and leave the monitor's state behind)."""
    finalizer = group_commit_for(_finalize_batch)
    done = asyncio.gather(*(finalizer.submit(receipt) for receipt in receipts), return_exceptions=True)
    _finalizing.add(done)
    done.add_done_callback(_finalizing.discard)


async def finalized_in_background() -> None:
    """Waits for the runs already written to be finalized (tests wait so; nothing else does: a run left at a
    stop is finalized at its deadline by aggregate's sweep)."""
    while _finalizing:
        await asyncio.gather(*list(_finalizing), return_exceptions=True)


async def _finalize_batch(receipts: list[PingReceipt]) -> list[None]:
    from shared.pipeline.aggregate import finalize_runs  # aggregate's own code: the two cannot disagree

    try:
        await finalize_runs([receipt.run_id for receipt in receipts])
    except Exception as error:  # by type only: see _announce
        log.warning(
            "finalizing %d ping runs failed (%s); announced for aggregate",
            len(receipts),
            type(error).__name__,
        )
        await _announce(receipts)
    return [None] * len(receipts)


async def _rate_limited(arrivals: list[_Arrival]) -> list[PingRefused | None]:
    """Per token, at most ping_rate_limit_per_minute pings in each clock minute: a 429 for those past it."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for arrival in arrivals:
            key = streams.ping_rate_key(arrival.token_hash.hex(), int(arrival.at.timestamp() // 60))
            pipe.incr(key)
            pipe.expire(key, 120)
        counts = (await pipe.execute())[::2]
    limit = get_settings().ping_rate_limit_per_minute
    return [
        PingRefused(429, "rate limited: too many pings for this check; try again in a minute")
        if count > limit
        else None
        for count in counts
    ]


async def _record_apart_if_need_be(arrivals: list[_Arrival]) -> list[PingReceipt | Exception]:
    """One transaction for the batch; if it fails, each ping in its own, so a ping the database refuses fails
    alone and not the pings that came with it."""
    if not arrivals:
        return []
    try:
        return await _record(arrivals)
    except Exception as error:
        if len(arrivals) == 1:
            return [error]
    outcomes: list[PingReceipt | Exception] = []
    for arrival in arrivals:
        try:
            outcomes.extend(await _record([arrival]))
        except Exception as error:
            outcomes.append(error)
    return outcomes


# The batch's heartbeats, locked in one order (monitor id) so two batches never wait on each other in a cycle,
# each with its last result's status (the first result's is_status_change).
_LOCK_HEARTBEATS = """
select h.monitor_id, h.token_hash, h.last_completed_at, h.open_start_at, h.open_start_rid, m.config, m.enabled,
       m.created_at,
       (select p.status from monitor_results p
        where p.monitor_id = h.monitor_id and p.location = %(location)s
        order by p.checked_at desc limit 1) as last_status
from heartbeats h join monitors m on m.id = h.monitor_id
where h.token_hash = any(%(hashes)s)
order by h.monitor_id
for no key update of h
"""

# Dedupe keys already counted, among those the batch carries (under the heartbeats' locks: no ping of theirs is
# written meanwhile).
_COUNTED_KEYS = """
select monitor_id, idempotency_key from heartbeat_pings
where (monitor_id, idempotency_key) in (select * from unnest(%(monitors)s::uuid[], %(keys)s::text[]))
"""

# One statement for the batch: its pings in arrival order, the runs and results of those that complete a job,
# each heartbeat's state after its last ping. Retries are not in it: they were told apart before.
_RECORD = """
with ping as (
    select * from jsonb_to_recordset(%(pings)s) as p(
        position int, monitor_id uuid, kind text, source text, exit_status int, rid text, dedupe text,
        at timestamptz, duration int, message text, run_id uuid, status text, result_message text,
        details jsonb, is_status_change bool)
),
stored as (
    insert into heartbeat_pings (monitor_id, kind, source, exit_status, rid, idempotency_key, received_at,
                                 duration_ms, message, run_id)
    select monitor_id, kind, source, exit_status, rid, dedupe, at, duration, message, run_id
    from ping order by position
),
run as (
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
    select run_id, monitor_id, at, array[%(location)s], at from ping where run_id is not null
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
        alarm_at = s.alarm_at, alarm_due = s.alarm_due, alarm_reason = s.alarm_reason, updated_at = s.updated_at
    from jsonb_to_recordset(%(states)s) as s(
        monitor_id uuid, last_completed_at timestamptz, last_success_at timestamptz, open_start_at timestamptz,
        open_start_rid text, alarm_at timestamptz, alarm_due timestamptz, alarm_reason text,
        updated_at timestamptz)
    where h.monitor_id = s.monitor_id
)
select run_id from result
"""


@dataclass
class _HeartbeatState:
    """A locked heartbeat as the batch's pings move it, one after another."""

    monitor_id: uuid.UUID
    schedule: HeartbeatSchedule
    enabled: bool
    created_at: datetime
    last_completed_at: datetime | None
    open_start: OpenStart | None
    last_status: str | None
    last_at: datetime | None = None  # the batch's last ping of it
    last_success_at: datetime | None = None
    upcoming: Alarm | None = None

    @classmethod
    def of(cls, row: dict) -> _HeartbeatState:
        open_start = OpenStart(row["open_start_at"], row["open_start_rid"]) if row["open_start_at"] else None
        return cls(
            row["monitor_id"],
            HeartbeatSchedule.from_config(row["config"]),
            row["enabled"],
            row["created_at"],
            row["last_completed_at"],
            open_start,
            row["last_status"],
        )

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
            "updated_at": _iso(self.last_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def _record(arrivals: list[_Arrival]) -> list[PingReceipt | Exception]:
    """The batch's pings in one transaction, applied in arrival order; a 404 PingRefused for unknown tokens."""
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                _LOCK_HEARTBEATS,
                {"hashes": list({a.token_hash for a in arrivals}), "location": HEARTBEAT_LOCATION},
            )
        ).fetchall()
        states = {row["token_hash"]: _HeartbeatState.of(row) for row in rows}
        counted = await _counted_keys(conn, arrivals, states)
        outcomes: list[PingReceipt | Exception] = []
        pings: list[dict] = []
        for arrival in arrivals:
            state = states.get(arrival.token_hash)
            if state is None:
                outcomes.append(PingRefused(404, "not found: no check has this ping URL"))
                continue
            dedupe = arrival.ping.dedupe_key()
            if dedupe is not None and (state.monitor_id, dedupe) in counted:
                outcomes.append(PingReceipt(False, None, state.monitor_id, None))
                continue
            if dedupe is not None:
                counted.add((state.monitor_id, dedupe))
            params, receipt = _apply(arrival, state)
            pings.append({**params, "position": len(pings)})
            outcomes.append(receipt)
        if not pings:
            return outcomes
        written = await (
            await conn.execute(
                _RECORD,
                {
                    "pings": Jsonb(pings),
                    "states": Jsonb([s.stored() for s in states.values() if s.last_at is not None]),
                    "location": HEARTBEAT_LOCATION,
                },
            )
        ).fetchall()
    runs = {row["run_id"] for row in written}
    # a run another writer holds at the same moment (the sweep's, to the microsecond) is not this ping's
    return [
        replace(outcome, run_id=None)
        if isinstance(outcome, PingReceipt) and outcome.run_id and outcome.run_id not in runs
        else outcome
        for outcome in outcomes
    ]


async def _counted_keys(conn, arrivals: list[_Arrival], states: dict) -> set[tuple[uuid.UUID, str]]:
    keyed = [
        (states[a.token_hash].monitor_id, key)
        for a in arrivals
        if a.token_hash in states and (key := a.ping.dedupe_key()) is not None
    ]
    if not keyed:
        return set()
    rows = await (
        await conn.execute(_COUNTED_KEYS, {"monitors": [m for m, _ in keyed], "keys": [k for _, k in keyed]})
    ).fetchall()
    return {(row["monitor_id"], row["idempotency_key"]) for row in rows}


def _apply(arrival: _Arrival, state: _HeartbeatState) -> tuple[dict, PingReceipt]:
    """One ping on its heartbeat's state as the batch's earlier pings left it: the rows to write and the ping's
    receipt, and the state moved on."""
    ping = arrival.ping
    # each ping its own moment: a heartbeat's runs are unique on it, and two pings may share a microsecond
    at = arrival.at if state.last_at is None or arrival.at > state.last_at else state.last_at + _MICROSECOND
    rid = str(ping.rid) if ping.rid else None
    effect = ping_effect(ping.kind, at, rid, state.open_start)
    if effect.opens_start:
        state.open_start = OpenStart(at, rid)
    elif effect.closes_start:
        state.open_start = None
    if effect.completes:
        state.last_completed_at = at
    reference = state.last_completed_at or state.created_at
    state.upcoming = alarm(state.schedule, reference, state.open_start.at if state.open_start else None)
    writes_run = effect.completes and state.enabled  # a paused heartbeat keeps its pings, not their runs
    status = effect.status if writes_run else None
    is_status_change = status is not None and status != state.last_status
    if status is not None:
        state.last_status = status
    if status == "up":
        state.last_success_at = at
    state.last_at = at
    duration = round(ping.ping_ms) if ping.ping_ms is not None else effect.duration_ms
    details = {"source": ping.source, "kind": ping.kind, "exitStatus": ping.exit_status, "rid": rid}
    run_id = uuid.uuid4() if writes_run else None
    params = {
        "monitor_id": str(state.monitor_id),
        "kind": ping.kind,
        "source": ping.source,
        "exit_status": ping.exit_status,
        "rid": rid,
        "dedupe": ping.dedupe_key(),
        "at": at.isoformat(),
        "duration": duration,
        "message": ping.message,
        "run_id": str(run_id) if run_id else None,
        "status": status,
        "result_message": _result_message(ping, effect.status),
        "details": {key: value for key, value in details.items() if value is not None},
        "is_status_change": is_status_change,
    }
    return params, PingReceipt(True, run_id, state.monitor_id, status, duration, at)


_MICROSECOND = timedelta(microseconds=1)


def _result_message(ping: PingRequest, status: str | None) -> str | None:
    if status is None:
        return None
    said = "Ping received" if status == "up" else "Job reported a failure"
    if ping.exit_status is not None:
        said += f" (exit status {ping.exit_status})"
    if ping.message:
        said += ": " + ping.message[:MAX_RESULT_MESSAGE]
    return said


async def _announce(receipts: list[PingReceipt]) -> None:
    """On sc:results, as a check function announces its results, for aggregate to finalize: the way when this
    process could not finalize them itself. Never raised: a run never announced is finalized at its deadline by
    aggregate's next sweep, so no job is told to retry what has counted."""
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for receipt in receipts:
                envelope = ResultEnvelope(
                    run_id=receipt.run_id,
                    monitor_id=receipt.monitor_id,
                    location=HEARTBEAT_LOCATION,
                    status=receipt.status,
                )
                pipe.xadd(streams.RESULTS_STREAM, {streams.PAYLOAD_FIELD: envelope.model_dump_json()})
            await pipe.execute()
    except Exception as error:  # by type only: the ping's URL, and with it the token, must not reach a log
        log.warning(
            "%d pings' runs were stored but not announced (%s); their deadlines finalize them",
            len(receipts),
            type(error).__name__,
        )


async def _publish_results(receipts: list[PingReceipt]) -> None:
    """After commit, the results' live events (the dashboard's rows), in one round trip; best effort."""
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            for receipt in receipts:
                event = {
                    "type": "result",
                    "monitorId": str(receipt.monitor_id),
                    "runId": str(receipt.run_id),
                    "location": HEARTBEAT_LOCATION,
                    "status": receipt.status,
                    "responseTimeMs": receipt.duration_ms,
                    "checkedAt": receipt.checked_at.isoformat(),
                }
                pipe.xadd(
                    streams.LIVE_EVENTS_STREAM,
                    {streams.PAYLOAD_FIELD: json.dumps(event)},
                    maxlen=streams.LIVE_EVENTS_MAX_LENGTH,
                    approximate=True,
                )
            await pipe.execute()
    except Exception as error:  # by type only, as above
        log.warning("%d pings' live events were not published (%s)", len(receipts), type(error).__name__)
