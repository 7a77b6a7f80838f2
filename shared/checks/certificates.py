"""TLS certificate facts, their verdicts, and the adaptive schedule of certificate checks (pure, plus a Redis note).
Used by the HTTP and website checks (shared/checks/http.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from shared import streams
from shared.redis import get_redis

log = logging.getLogger(__name__)
DEFAULT_WARNING_DAYS = 30
_STATE_TTL_SECONDS = 2 * 24 * 3600  # longer than the longest interval, so a note outlives its next check


@dataclass(frozen=True)
class CertificateFacts:
    subject: str
    issuer: str
    valid_from: str
    valid_to: str
    days_until_expiry: int
    sans: list[str]
    serial_number: str
    sha256_fingerprint: str

    def as_details(self) -> dict:
        facts = asdict(self)
        return {
            "subject": facts["subject"],
            "issuer": facts["issuer"],
            "validFrom": facts["valid_from"],
            "validTo": facts["valid_to"],
            "daysUntilExpiry": facts["days_until_expiry"],
            "expired": facts["days_until_expiry"] <= 0,
            "sans": facts["sans"],
            "serialNumber": facts["serial_number"],
            "sha256Fingerprint": facts["sha256_fingerprint"],
        }


def days_until(moment: datetime, now: datetime) -> int:
    """Whole days left, rounded up: a certificate expiring in 9.2 days has 10 days left; an expired one <= 0."""
    return math.ceil((moment - now).total_seconds() / 86400)


def certificate_facts(der: bytes, now: datetime) -> CertificateFacts:
    certificate = x509.load_der_x509_certificate(der)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(n) for n in names.get_values_for_type(x509.DNSName)] + [
            str(ip) for ip in names.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        sans = []
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        valid_from=certificate.not_valid_before_utc.isoformat(),
        valid_to=certificate.not_valid_after_utc.isoformat(),
        days_until_expiry=days_until(certificate.not_valid_after_utc, now),
        sans=sans,
        serial_number=format(certificate.serial_number, "x"),
        sha256_fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def certificate_verdict(facts: CertificateFacts, valid_from: datetime, now: datetime, warning_days: int):
    """(status, message or None, warning or None) for a certificate the TLS handshake accepted or not."""
    if facts.days_until_expiry <= 0:
        return "down", f"SSL certificate expired on {facts.valid_to[:10]}", None
    if valid_from > now:
        return "down", f"SSL certificate is not yet valid (valid from {facts.valid_from[:10]})", None
    if facts.days_until_expiry <= warning_days:
        return (
            "up",
            None,
            f"SSL certificate expires in {facts.days_until_expiry} days (warning at {warning_days} days)",
        )
    return "up", None, None


# OpenSSL's X509_V_ERR codes that have a plain-language reason.
_VERIFY_REASONS = {
    9: "is not yet valid",
    10: "has expired",
    18: "is untrusted: it is self-signed",
    19: "is untrusted: a self-signed certificate is in its chain",
    20: "is untrusted: its issuer is not a trusted authority",
    21: "is untrusted: its issuer is not a trusted authority",
}


def describe_verification_error(error: ssl.SSLCertVerificationError) -> str:
    reason = _VERIFY_REASONS.get(error.verify_code)
    if reason:
        return f"SSL certificate {reason}"
    if error.verify_code in (62, 64):  # hostname or IP address mismatch
        return f"SSL certificate does not match the host ({error.verify_message})"
    return f"SSL certificate is invalid: {error.verify_message or error.reason or error}"


def check_interval(days_left: int | None, warning_days: int) -> timedelta:
    """Adaptive: every 24 h; every 6 h inside twice the warning window; every hour inside the window."""
    if days_left is None or days_left <= warning_days:
        return timedelta(hours=1)
    if days_left <= 2 * warning_days:
        return timedelta(hours=6)
    return timedelta(hours=24)


def certificate_check_due(last: dict | None, warning_days: int, now: datetime) -> bool:
    """`last` is the note of the previous certificate check ({checkedAt, daysLeft}); none means a first run."""
    if not last:
        return True
    try:
        checked_at = datetime.fromisoformat(last["checkedAt"])
        days_left = last.get("daysLeft")
    except (KeyError, TypeError, ValueError):
        return True
    return now - checked_at >= check_interval(days_left, warning_days)


def state_key(monitor_id: object, location: str) -> str:
    return f"{streams.PREFIX}:ssl:{monitor_id}:{location}"


async def load_state(monitor_id: object, location: str) -> dict | None:
    """Best effort: without Redis every run checks the certificate, which is only more work, never wrong."""
    try:
        raw = await asyncio.wait_for(get_redis().get(state_key(monitor_id, location)), 2)
        return json.loads(raw) if raw else None
    except Exception as error:
        log.warning("certificate check note unavailable: %s", error)
        return None


async def save_state(monitor_id: object, location: str, days_left: int, now: datetime) -> None:
    note = json.dumps({"checkedAt": now.isoformat(), "daysLeft": days_left})
    try:
        await asyncio.wait_for(
            get_redis().set(state_key(monitor_id, location), note, ex=_STATE_TTL_SECONDS), 2
        )
    except Exception as error:
        log.warning("could not note the certificate check: %s", error)


_UNVERIFIED = ssl.create_default_context()
_UNVERIFIED.check_hostname = False
_UNVERIFIED.verify_mode = ssl.CERT_NONE


async def fetch_unverified_certificate(
    address: str, port: int, server_name: str, within_seconds: float
) -> bytes | None:
    """The certificate a server presents even when it fails verification, to report its facts (expiry, issuer)."""
    try:
        async with asyncio.timeout(within_seconds):
            _, writer = await asyncio.open_connection(
                address, port, ssl=_UNVERIFIED, server_hostname=server_name or None
            )
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object else None
    finally:
        writer.close()


def now_utc() -> datetime:
    return datetime.now(UTC)
