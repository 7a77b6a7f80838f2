"""A heartbeat ping as a request gives it (Healthchecks' and Uptime Kuma's URL shapes), parsed and validated,
and as the sc:pings stream carries it from the ping function (shared/heartbeats/intake.py) to aggregate, which
writes it (shared/heartbeats/record.py).

Shapes, after /function/ping: /<token> (success), /<token>/start, /<token>/fail, /<token>/log,
/<token>/<exit status> (0 success, 1-255 failure), ?rid=<uuid> pairing a start with its end; and Kuma's
/api/push/<token>?status=up|down&msg=...&ping=<ms>. GET, HEAD and POST alike; a body up to 100 KB is the ping's
message. The token is the credential: it is never logged, echoed, stored or put in a Redis key or a stream
entry (its SHA-256 hash is).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, ValidationError

from shared.errors import describe_error
from shared.heartbeats.tokens import TOKEN_PATTERN
from shared.models import ApiModel, Envelope
from shared.rules.heartbeats import PingKind, kind_of_exit_status

MAX_BODY_BYTES = 100 * 1024
MAX_RESULT_MESSAGE = 2000  # the result's message; the whole body stays on the ping
# A heartbeat's runs are single: its one location names the job pinging in, not a region checking.
HEARTBEAT_LOCATION = "heartbeat"
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


class PingEnvelope(Envelope):
    """A ping the ping function accepted, on sc:pings: its heartbeat (found by the token's hash), the hash again so
    aggregate writes it only if the token is still the heartbeat's, and the moment it arrived."""

    kind: Literal["ping"] = "ping"
    ping_id: uuid.UUID  # what makes a redelivered entry the same ping
    monitor_id: uuid.UUID
    token_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    received_at: AwareDatetime
    source: Literal["healthchecks", "kuma"]
    ping_kind: PingKind
    exit_status: int | None = Field(default=None, ge=0, le=255)
    rid: uuid.UUID | None = None
    message: str | None = Field(default=None, max_length=MAX_BODY_BYTES)
    ping_ms: float | None = Field(default=None, ge=0, le=365 * 86400 * 1000)
    dedupe: str | None = Field(default=None, min_length=1, max_length=300)

    def stored_key(self) -> str:
        """The ping's idempotency_key column: what a retry shares with it, else its own id (a redelivery)."""
        return self.dedupe if self.dedupe is not None else f"ping:{self.ping_id}"

    @staticmethod
    def payload_of(
        ping: PingRequest,
        ping_id: uuid.UUID,
        monitor_id: uuid.UUID,
        token_hash_hex: str,
        received_at: datetime,
    ) -> str:
        """The stream entry of an accepted ping, as this model reads it back. Written by hand from a request
        already validated: building the model to dump it was a twentieth of the ping function's time (py-spy),
        and aggregate validates every entry against the model anyway."""
        return json.dumps(
            {
                "v": 1,
                "kind": "ping",
                "ping_id": str(ping_id),
                "monitor_id": str(monitor_id),
                "token_hash": token_hash_hex,
                "received_at": received_at.isoformat(),
                "source": ping.source,
                "ping_kind": ping.kind,
                "exit_status": ping.exit_status,
                "rid": str(ping.rid) if ping.rid else None,
                "message": ping.message,
                "ping_ms": ping.ping_ms,
                "dedupe": ping.dedupe_key(),
            }
        )
