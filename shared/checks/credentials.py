"""Credentials inside check configs: sealed (encrypted) when a config is validated, revealed only inside a check.
Used by the HTTP checks (shared/checks/http.py): sealed in their config models, revealed in the check."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import BeforeValidator

from shared.security import is_encrypted, key_ring, mask

MAX_SECRET_LENGTH = 4096
_MASKED = re.compile(r"(?:.{2})?\*\*\*\*(?:.{2})?", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|passw|api[-_]?key|auth", re.IGNORECASE)


def seal(value: object) -> str | None:
    """Plaintext in, ciphertext out. Ciphertext passes through, so a stored config validates again unchanged.

    Errors never quote the value: it is a secret.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if is_encrypted(value):
        return value
    if _MASKED.fullmatch(value):
        # An API read shows secrets masked; sending that back must not replace the secret with its mask.
        raise ValueError("is a masked value as API reads show it; send the secret itself")
    if len(value) > MAX_SECRET_LENGTH:
        raise ValueError(f"must be at most {MAX_SECRET_LENGTH} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, ...)")
    return key_ring().encrypt(value)


# A config field holding a secret: give it plaintext, it keeps (and dumps) the ciphertext.
SealedSecret = Annotated[str | None, BeforeValidator(seal)]


def reveal(value: str) -> str:
    """The plaintext, for use inside a check only. Raises CredentialKeyError if the key id is unknown."""
    return key_ring().decrypt(value) if is_encrypted(value) else value


def is_sensitive_header(name: str) -> bool:
    return bool(_SENSITIVE_HEADER.search(name))


def basic_auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replaces every secret in text (a body excerpt, an error) by its mask; a server may echo what it was sent."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return text
