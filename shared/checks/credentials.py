"""Credentials inside check configs: sealed (encrypted) when a config is validated, revealed only inside a check.
Used by the HTTP checks (shared/checks/http.py): sealed in their config models, revealed in the check.

A config validated from a request is validated with a `Sealing` in pydantic's context: it says whose secrets
these are, and which ciphertexts the request may carry (only those already stored for the same monitor, as a
partial update keeps them). A ciphertext from anywhere else is refused: it could be another project's."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

from shared.security import Binding, is_encrypted, key_ring, mask

MAX_SECRET_LENGTH = 4096
_MASKED = re.compile(r"(?:.{2})?\*\*\*\*(?:.{2})?", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|passw|api[-_]?key|auth", re.IGNORECASE)


@dataclass(frozen=True)
class Sealing:
    """Pydantic context for validating a config from a request: the owner, and the ciphertexts it may keep."""

    project_id: uuid.UUID
    kept: frozenset[str] = frozenset()
    # A trial reaching a check function carries what the API sealed; a ciphertext there opens only if it is this
    # project's (the binding sees to that), so passing it through gives a caller nothing it did not have.
    passes_ciphertext: bool = False

    @classmethod
    def keeping(cls, project_id: uuid.UUID, stored: Any) -> Sealing:
        """A partial update re-validates the stored config: its own ciphertexts may stay as they are."""
        return cls(project_id, frozenset(_ciphertexts(stored)))

    def context(self) -> dict:
        return {SEALING: self}


SEALING = "sealing"


def _ciphertexts(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _ciphertexts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ciphertexts(item)
    elif is_encrypted(value):
        yield value


def sealing_of(info: ValidationInfo | None) -> Sealing | None:
    context = info.context if info is not None else None
    return context.get(SEALING) if isinstance(context, dict) else None


def seal(value: object, field: str, sealing: Sealing | None) -> str | None:
    """Plaintext in, ciphertext bound to its project and field out.

    Without a Sealing (a stored config validated again inside a check), ciphertext passes through and plaintext
    is refused, so nothing is ever stored unencrypted. Errors never quote the value: it is a secret.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if is_encrypted(value):
        if sealing is None or sealing.passes_ciphertext or value in sealing.kept:
            return value
        raise ValueError("is an encrypted value; send the secret itself, which is encrypted when saved")
    if _MASKED.fullmatch(value):
        # An API read shows secrets masked; sending that back must not replace the secret with its mask.
        raise ValueError("is a masked value as API reads show it; send the secret itself")
    if len(value) > MAX_SECRET_LENGTH:
        raise ValueError(f"must be at most {MAX_SECRET_LENGTH} characters")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, ...)")
    if sealing is None:
        raise ValueError("cannot be encrypted here: no project is known for this config")
    return key_ring().encrypt(value, Binding(sealing.project_id, field))


def sealed_secret(field: str):
    """A config field holding a secret, named by its path in a monitor (e.g. 'config.auth.password'):
    give it plaintext, it keeps (and dumps) the ciphertext."""

    def validate(value: object, info: ValidationInfo) -> str | None:
        return seal(value, field, sealing_of(info))

    return Annotated[str | None, BeforeValidator(validate)]


def header_field(name: str) -> str:
    return f"config.headers.{name}"


def reveal(value: str, project_id: uuid.UUID | None, field: str) -> str:
    """The plaintext, for use inside a check only. Raises CredentialKeyError if the key id is unknown, and
    InvalidTag if the ciphertext belongs to another project or field."""
    if not is_encrypted(value):
        return value
    # A job without a project (queued by an older schedule) can still open the key-id-only ciphertexts of then.
    return key_ring().decrypt(value, Binding(project_id or "", field))


def is_sensitive_header(name: str) -> bool:
    return bool(_SENSITIVE_HEADER.search(name))


def basic_auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replaces every secret in text (a body excerpt, an error) by its mask; a server may echo what it was sent."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, mask(secret))
    return text
