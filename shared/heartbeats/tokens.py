"""Heartbeat ping tokens: the credential in a ping URL. 192 random bits, never stored in plaintext: a SHA-256
hash finds the monitor a ping names, and a copy encrypted to the monitor's project (shared/security.py) shows
the monitor's pingUrl. Used by the API's monitor service and the ping function."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid

from shared import streams
from shared.security import Binding, key_ring
from shared.settings import get_settings

log = logging.getLogger("supercheck.heartbeats")

TOKEN_BYTES = 24  # 192 bits, URL-safe base64: 32 characters
# What a ping URL's token segment may be; anything else is not a token (404, as an unknown one).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,64}")
PING_PATH = "/function/ping/"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    # The token carries 192 random bits, so a fast hash is enough (as for API keys, shared/auth.py).
    return hashlib.sha256(token.encode()).digest()


def _binding(project_id: uuid.UUID | str) -> Binding:
    return Binding(project_id, "heartbeats.token")


def seal(token: str, project_id: uuid.UUID | str) -> str:
    return key_ring().encrypt(token, _binding(project_id))


def ping_url(token_encrypted: str, project_id: uuid.UUID | str) -> str | None:
    """The URL the job pings; None when the stored copy no longer decrypts (a key removed from the ring)."""
    try:
        token = key_ring().decrypt(token_encrypted, _binding(project_id))
    except Exception:  # a ciphertext that does not open must not fail the whole monitor listing
        return None
    return get_settings().public_base_url.rstrip("/") + PING_PATH + token


async def tokens_retired() -> None:
    """After a commit that retired a token (rotated, its heartbeat deleted or made another type): the ping
    functions drop their cached tokens at their next ping (shared/heartbeats/intake.py). Best effort: a missed
    bump leaves an old token accepted for at most the cache's 15 minutes, and aggregate counts none of its
    pings that arrived after the rotation."""
    from shared.redis import get_redis

    try:
        await get_redis().incr(streams.PING_TOKENS_EPOCH_KEY)
    except Exception as error:
        log.warning("ping token caches not told of a retired token (%s)", type(error).__name__)
