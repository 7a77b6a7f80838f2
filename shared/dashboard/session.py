"""The dashboard's session: a signed cookie naming the API key that signed in, never the key itself.

The cookie holds {key id, project id, CSRF token, issued at}, signed with HMAC-SHA256 under a key derived from the
`internal-token` secret for this purpose only. Every request checks the signature, the age and that the key is
still unrevoked, so revoking a key in the API ends its dashboard sessions at their next click.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.settings import get_settings

SESSION_COOKIE = "sc_session"
LOGIN_CSRF_COOKIE = "sc_login_csrf"  # the sign-in form's double-submit token, before any session exists
SESSION_SECONDS = 12 * 3600
_PURPOSE = b"supercheck dashboard session v1"


@dataclass(frozen=True)
class Session:
    api_key_id: uuid.UUID
    project_id: uuid.UUID
    csrf_token: str
    issued_at: int


def _signing_key() -> bytes:
    return hmac.new(get_settings().require_internal_token().encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_session(api_key_id: uuid.UUID, project_id: uuid.UUID, now: float | None = None) -> Session:
    return Session(
        api_key_id, project_id, secrets.token_urlsafe(24), int(now if now is not None else time.time())
    )


def encode(session: Session) -> str:
    payload = _b64(
        json.dumps(
            {
                "k": str(session.api_key_id),
                "p": str(session.project_id),
                "c": session.csrf_token,
                "t": session.issued_at,
            },
            separators=(",", ":"),
        ).encode()
    )
    signature = _b64(hmac.new(_signing_key(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode(cookie: str | None, now: float | None = None) -> Session | None:
    """The session a cookie carries, or None when it is missing, tampered with, malformed or too old."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signature = cookie.split(".")
    expected = _b64(hmac.new(_signing_key(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(uuid.UUID(data["k"]), uuid.UUID(data["p"]), str(data["c"]), int(data["t"]))
    except (ValueError, KeyError, TypeError):
        return None
    age = (now if now is not None else time.time()) - session.issued_at
    return session if 0 <= age <= SESSION_SECONDS else None


def tokens_match(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def cookie_is_secure(scheme: str, host: str) -> bool:
    """Secure, except over plain http to a loopback host (`make run` on http://127.0.0.1:8080), where a Secure
    cookie would never come back and sign-in could not work."""
    if scheme != "http":
        return True
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True
