"""Signed internal calls: an HMAC-SHA256 over a timestamp and the exact body, keyed by the `internal-token` secret.
Used by the connector (each delivery), the API (its calls to check functions) and every function (shared/handlers.py
verifies before the body is parsed). Standard library only: the connector image carries no web framework."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from shared.settings import get_settings

TIMESTAMP_HEADER = "X-Supercheck-Timestamp"
SIGNATURE_HEADER = "X-Supercheck-Signature"
VERSION = "v1"
# A delivery older (or, clocks being skewed, newer) than this is refused. Within it a replay is possible, and
# harmless: every delivery is at-least-once already, and its writes are idempotent on their natural keys.
REPLAY_WINDOW_SECONDS = 300
_MAX_TIMESTAMP_DIGITS = 12


class SignatureRefused(Exception):
    """Why a call is not a valid signed delivery; the reason names no secret and is safe to answer."""


def is_signed(headers: Mapping[str, str]) -> bool:
    """A call that claims to be internal: it must then verify, whatever else it carries."""
    return any(
        name in headers for name in (SIGNATURE_HEADER, SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower())
    )


def _mac(token: str, timestamp: str, body: bytes) -> str:
    # The signed string: "<unix seconds>." + the body's bytes, as sent.
    digest = hmac.new(token.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def sign(body: bytes, token: str | None = None, now: float | None = None) -> dict[str, str]:
    """The headers that make body a signed internal call (token: the configured internal token unless given)."""
    token = token or get_settings().require_internal_token()
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: _mac(token, timestamp, body)}


def verify(
    headers: Mapping[str, str], body: bytes, token: str | None = None, now: float | None = None
) -> None:
    """Raises SignatureRefused unless headers carry a current signature of body under the internal token."""
    if token is None:
        try:
            token = get_settings().require_internal_token()
        except RuntimeError:
            raise SignatureRefused("this function has no internal token configured") from None
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise SignatureRefused(f"a signed call needs both {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise SignatureRefused(f"{TIMESTAMP_HEADER} must be unix seconds")
    if not hmac.compare_digest(signature.encode(), _mac(token, timestamp, body).encode()):
        raise SignatureRefused("the signature does not match")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > REPLAY_WINDOW_SECONDS:
        raise SignatureRefused(f"the signature is outside the {REPLAY_WINDOW_SECONDS}-second replay window")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) or headers.get(name.lower())
