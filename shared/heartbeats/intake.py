"""The ping function's work: a validated ping (shared/heartbeats/ping.py) taken in. Its token is found among the
heartbeats' token hashes (cached in the process), and the ping is rate limited per token, marked if it is a retry,
and put on sc:pings, all in one script Redis runs at once. The answer goes out then; aggregate writes the ping,
its run and its result in order, in batches (shared/heartbeats/record.py).

Why through Redis: written in the request, each ping was a transaction of a few pings (what one process had in
flight), and its database work was half of what a ping cost; on sc:pings they are written a connector batch at a
time. An accepted ping is as safe as every job and result of the pipeline: it is in Redis (append-only), and
acknowledged there only after aggregate's commit. The sweep never calls a heartbeat overdue past a ping still
queued for it (shared/heartbeats/sweep.py).

Pings a process receives while a batch is in Redis go together in the next (shared/heartbeats/group_commit.py).
A rotated or deleted token is refused from the next ping on: the API bumps sc:ping:tokens-epoch after its commit
and the script refuses a batch resolved against another epoch; aggregate counts a ping of a rotated token only
if it arrived before the rotation.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from shared import db, streams
from shared.heartbeats.group_commit import group_commit_for
from shared.heartbeats.ping import PingEnvelope, PingRefused, PingRequest
from shared.heartbeats.tokens import token_hash
from shared.redis import get_redis
from shared.settings import get_settings

# How long a token found (or not) is believed without asking the database again. The epoch retires a token at
# once, so this only bounds what a missed bump (Redis failing at the API's commit) could let through to
# aggregate, which checks the token again; and it is longer than most heartbeats' period, so a heartbeat pinging
# every few minutes is found in the cache, not in the database.
TOKEN_CACHE_SECONDS = 900.0
TOKEN_CACHE_ENTRIES = (
    200_000  # past this the cache starts again: random tokens must not grow it without bound
)
_EPOCH_ATTEMPTS = 3

# KEYS: the stream, the epoch, then per ping its rate key and its seen key ('' when it has no dedupe key).
# ARGV: the epoch the tokens were found under, the rate limit, the seen mark's seconds, then per ping its
# payload. Per ping: 'limited' past the limit, 'seen' for a retry already taken, else 'ok' once it is on the
# stream; or {'stale', epoch} and nothing done when a token was retired since.
_ACCEPT = """
local epoch = redis.call('GET', KEYS[2]) or '0'
if epoch ~= ARGV[1] then return {'stale', epoch} end
local limit, seen_seconds = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 1, #ARGV - 3 do
  local rate, seen = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local count = redis.call('INCR', rate)
  if count == 1 then redis.call('EXPIRE', rate, 120) end
  if count > limit then
    out[i] = 'limited'
  elseif seen ~= '' and not redis.call('SET', seen, '1', 'NX', 'EX', seen_seconds) then
    out[i] = 'seen'
  else
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[3 + i])
    out[i] = 'ok'
  end
end
return out
"""


@dataclass(frozen=True)
class PingReceipt:
    counted: bool  # False: a retry of a ping already taken


_NOT_FOUND = PingRefused(404, "not found: no check has this ping URL")
_LIMITED = PingRefused(429, "rate limited: too many pings for this check; try again in a minute")


class TokenDirectory:
    """Token hash -> heartbeat, as the heartbeats table says, believed for TOKEN_CACHE_SECONDS and forgotten
    whenever the epoch moves. An unknown hash is remembered too: a token is random, so one that names nothing
    now names nothing later (a new heartbeat's token is new)."""

    def __init__(self) -> None:
        self.epoch: str | None = (
            None  # None: not read yet, so the first batch is refused as stale and reads it
        )
        self._found: dict[bytes, tuple[uuid.UUID | None, float]] = {}

    def forget(self, epoch: str) -> None:
        self._found.clear()
        self.epoch = epoch

    async def monitors_of(self, hashes: set[bytes]) -> dict[bytes, uuid.UUID | None]:
        now = time.monotonic()
        found, missing = {}, []
        for digest in hashes:
            entry = self._found.get(digest)
            if entry is not None and entry[1] > now:
                found[digest] = entry[0]
            else:
                missing.append(digest)
        if missing:
            async with db.transaction() as conn:
                rows = await (
                    await conn.execute(
                        "select token_hash, monitor_id from heartbeats where token_hash = any(%s)", (missing,)
                    )
                ).fetchall()
            named = {bytes(row["token_hash"]): row["monitor_id"] for row in rows}
            if len(self._found) + len(missing) > TOKEN_CACHE_ENTRIES:
                self._found.clear()
            for digest in missing:
                found[digest] = named.get(digest)
                self._found[digest] = (found[digest], now + TOKEN_CACHE_SECONDS)
        return found


_directory = TokenDirectory()


@dataclass
class _Arrival:
    ping: PingRequest
    at: datetime
    token_hash: bytes = b""

    def __post_init__(self):
        self.token_hash = token_hash(self.ping.token)


async def receive_ping(ping: PingRequest) -> PingReceipt:
    """Takes the ping in with the others this process receives meanwhile; answers once it is on sc:pings.
    PingRefused: 404 for a token no heartbeat has, 429 past the token's rate limit."""
    return await group_commit_for(_accept_batch).submit(_Arrival(ping, datetime.now(UTC)))


def _ping_id() -> uuid.UUID:
    """What tells a redelivered entry from a new ping: unique, not secret, so without uuid4's system call per
    ping (random is reseeded in each forked worker)."""
    return uuid.UUID(int=random.getrandbits(128), version=4)


async def _accept_batch(arrivals: list[_Arrival]) -> list[PingReceipt | Exception]:
    for _ in range(_EPOCH_ATTEMPTS):
        monitors = await _directory.monitors_of({a.token_hash for a in arrivals})
        known = [a for a in arrivals if monitors[a.token_hash] is not None]
        answers = await _accept(known, monitors) if known else {}
        if answers is not None:
            return [answers.get(id(a), _NOT_FOUND) for a in arrivals]
    raise RuntimeError("ping tokens kept changing while the batch was taken in")  # each submitter gets a 500


def _accept_script():
    """The script bound to this loop's client: sent by its SHA, its text only when Redis has not seen it."""
    global _script
    client = get_redis()
    if _script is None or _script.registered_client is not client:
        _script = client.register_script(_ACCEPT)
    return _script


_script = None
_ANSWERS = {"ok": PingReceipt(True), "seen": PingReceipt(False), "limited": _LIMITED}


async def _accept(known: list[_Arrival], monitors: dict) -> dict[int, PingReceipt | Exception] | None:
    """The script run for the batch's known tokens; None (and the cache dropped) when the epoch moved."""
    settings = get_settings()
    keys, payloads = [streams.PINGS_STREAM, streams.PING_TOKENS_EPOCH_KEY], []
    for arrival in known:
        monitor_id = monitors[arrival.token_hash]
        digest = arrival.token_hash.hex()
        keys.append(streams.ping_rate_key(digest, int(arrival.at.timestamp() // 60)))
        dedupe = arrival.ping.dedupe_key()
        keys.append(
            streams.ping_seen_key(str(monitor_id), hashlib.sha256(dedupe.encode()).hexdigest()[:32])
            if dedupe
            else ""
        )
        payloads.append(PingEnvelope.payload_of(arrival.ping, _ping_id(), monitor_id, digest, arrival.at))
    reply = await _accept_script()(
        keys=keys,
        args=[
            _directory.epoch or "",
            settings.ping_rate_limit_per_minute,
            streams.PING_SEEN_SECONDS,
            *payloads,
        ],
    )
    if reply and reply[0] == "stale":
        _directory.forget(reply[1])
        return None
    return {id(arrival): _ANSWERS[answer] for arrival, answer in zip(known, reply, strict=True)}
