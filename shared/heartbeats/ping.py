"""The ping function's work: a ping URL (Healthchecks' and Uptime Kuma's shapes) parsed and validated, rate
limited per token, and written once: the ping, and for a completion a run and its result, announced on
sc:results as a check function announces its results. Used by functions/ping.

Shapes, after /function/ping: /<token> (success), /<token>/start, /<token>/fail, /<token>/log,
/<token>/<exit status> (0 success, 1-255 failure), ?rid=<uuid> pairing a start with its end; and Kuma's
/api/push/<token>?status=up|down&msg=...&ping=<ms>. GET, HEAD and POST alike; a body up to 100 KB is the ping's
message. The token is the credential: it is never logged, echoed, stored or put in a Redis key.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from psycopg.types.json import Jsonb
from pydantic import Field, ValidationError

from shared import db, streams
from shared.errors import describe_error
from shared.heartbeats.tokens import TOKEN_PATTERN, token_hash
from shared.models import ApiModel, ResultEnvelope
from shared.redis import get_redis
from shared.rules.heartbeats import (
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
            "message": kuma.msg or fields["message"],
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
    return body[:MAX_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


async def admit(ping: PingRequest) -> None:
    """The per-token rate limit: at most ping_rate_limit_per_minute pings in each clock minute."""
    minute = int(time.time() // 60)
    key = streams.ping_rate_key(token_hash(ping.token).hex(), minute)
    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    if count > get_settings().ping_rate_limit_per_minute:
        raise PingRefused(429, "rate limited: too many pings for this check; try again in a minute")


_LOCK_HEARTBEAT = """
select h.monitor_id, h.last_completed_at, h.open_start_at, h.open_start_rid, m.project_id, m.config, m.enabled,
       m.created_at
from heartbeats h join monitors m on m.id = h.monitor_id
where h.token_hash = %s
for no key update of h
"""

# One statement: the ping (once per dedupe key), its run and result if it completes the job, the heartbeat's
# new state. A duplicate inserts no ping, and with it nothing else.
_RECORD = """
with ping as (
    insert into heartbeat_pings (monitor_id, kind, source, exit_status, rid, idempotency_key, received_at,
                                 duration_ms, message, run_id)
    values (%(monitor_id)s, %(kind)s, %(source)s, %(exit_status)s, %(rid)s, %(dedupe)s, %(at)s, %(duration)s,
            %(message)s, %(run_id)s)
    on conflict (monitor_id, idempotency_key) do nothing
    returning id
),
run as (
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
    select %(run_id)s, %(monitor_id)s, %(at)s, array[%(location)s], %(at)s
    where %(run_id)s::uuid is not null and exists (select 1 from ping)
    on conflict (monitor_id, scheduled_at) do nothing
    returning id
),
result as (
    insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms, message,
                                 details, is_status_change)
    select run.id, %(monitor_id)s, %(location)s, %(status)s, %(at)s, %(duration)s, %(result_message)s,
        %(details)s, %(status)s is distinct from (
            select p.status from monitor_results p
            where p.monitor_id = %(monitor_id)s and p.location = %(location)s
            order by p.checked_at desc limit 1)
    from run
    returning run_id
),
advanced as (
    update heartbeats set
        last_completed_at = case when %(completes)s then %(at)s else last_completed_at end,
        last_success_at = case when %(status)s = 'up' then %(at)s else last_success_at end,
        open_start_at = %(open_start_at)s, open_start_rid = %(open_start_rid)s,
        alarm_at = %(alarm_at)s, alarm_due = %(alarm_due)s, alarm_reason = %(alarm_reason)s, updated_at = %(at)s
    where monitor_id = %(monitor_id)s and exists (select 1 from ping)
)
select (select count(*) from ping) as counted, (select run_id from result) as run_id
"""


@dataclass(frozen=True)
class PingReceipt:
    counted: bool  # False: a retry of a ping already counted
    run_id: uuid.UUID | None
    monitor_id: uuid.UUID
    status: str | None


def _record_params(ping: PingRequest, row: dict, at: datetime) -> dict:
    rid = str(ping.rid) if ping.rid else None
    open_start = OpenStart(row["open_start_at"], row["open_start_rid"]) if row["open_start_at"] else None
    effect = ping_effect(ping.kind, at, rid, open_start)
    if effect.opens_start:
        open_start = OpenStart(at, rid)
    elif effect.closes_start:
        open_start = None
    reference = at if effect.completes else (row["last_completed_at"] or row["created_at"])
    upcoming = alarm(
        HeartbeatSchedule.from_config(row["config"]), reference, open_start.at if open_start else None
    )
    writes_run = effect.completes and row["enabled"]  # a paused heartbeat keeps its pings, not their runs
    duration = round(ping.ping_ms) if ping.ping_ms is not None else effect.duration_ms
    details = {"source": ping.source, "kind": ping.kind, "exitStatus": ping.exit_status, "rid": rid}
    return {
        "monitor_id": row["monitor_id"],
        "kind": ping.kind,
        "source": ping.source,
        "exit_status": ping.exit_status,
        "rid": rid,
        "dedupe": ping.dedupe_key(),
        "at": at,
        "duration": duration,
        "message": ping.message,
        "run_id": uuid.uuid4() if writes_run else None,
        "location": HEARTBEAT_LOCATION,
        "status": effect.status if writes_run else None,
        "result_message": _result_message(ping, effect.status),
        "details": Jsonb({key: value for key, value in details.items() if value is not None}),
        "completes": effect.completes,
        "open_start_at": open_start.at if open_start else None,
        "open_start_rid": open_start.rid if open_start else None,
        "alarm_at": upcoming.at,
        "alarm_due": upcoming.due,
        "alarm_reason": upcoming.reason,
    }


def _result_message(ping: PingRequest, status: str | None) -> str | None:
    if status is None:
        return None
    said = "Ping received" if status == "up" else "Job reported a failure"
    if ping.exit_status is not None:
        said += f" (exit status {ping.exit_status})"
    if ping.message:
        said += ": " + ping.message[:MAX_RESULT_MESSAGE]
    return said


async def record_ping(ping: PingRequest, now: datetime | None = None) -> PingReceipt:
    """Writes the ping once; a 404 PingRefused for a token no heartbeat has."""
    at = now or datetime.now(UTC)
    async with db.transaction() as conn:
        row = await (await conn.execute(_LOCK_HEARTBEAT, (token_hash(ping.token),))).fetchone()
        if row is None:
            raise PingRefused(404, "not found: no check has this ping URL")
        params = _record_params(ping, row, at)
        written = await (await conn.execute(_RECORD, params)).fetchone()
    receipt = PingReceipt(bool(written["counted"]), written["run_id"], row["monitor_id"], params["status"])
    if receipt.run_id is not None:
        await _announce(receipt, at, params["duration"])
    return receipt


async def _announce(receipt: PingReceipt, at: datetime, duration_ms: int | None) -> None:
    """After commit, as a check function announces a result (aggregate finalizes the run from sc:results),
    with its live event, in one round trip. Never raised: the ping is stored, and a run never announced is
    finalized at its deadline by aggregate's next sweep, so the job is not told to retry what has counted."""
    envelope = ResultEnvelope(
        run_id=receipt.run_id,
        monitor_id=receipt.monitor_id,
        location=HEARTBEAT_LOCATION,
        status=receipt.status,
    )
    event = {
        "type": "result",
        "monitorId": str(receipt.monitor_id),
        "runId": str(receipt.run_id),
        "location": HEARTBEAT_LOCATION,
        "status": receipt.status,
        "responseTimeMs": duration_ms,
        "checkedAt": at.isoformat(),
    }
    try:
        async with get_redis().pipeline(transaction=False) as pipe:
            pipe.xadd(streams.RESULTS_STREAM, {streams.PAYLOAD_FIELD: envelope.model_dump_json()})
            pipe.xadd(
                streams.LIVE_EVENTS_STREAM,
                {streams.PAYLOAD_FIELD: json.dumps(event)},
                maxlen=streams.LIVE_EVENTS_MAX_LENGTH,
                approximate=True,
            )
            await pipe.execute()
    except Exception as error:  # by type only: the ping's URL, and with it the token, must not reach a log
        log.warning(
            "a ping's run was stored but not announced (%s); its deadline finalizes it", type(error).__name__
        )
