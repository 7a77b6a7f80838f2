"""The email provider: one SMTP server, up to MAX_RECIPIENTS addresses, each sent (and retried) on its own.

Used by the alert function and the API's provider endpoints, through shared.notify.PROVIDERS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field, field_validator, model_validator

from shared import ssrf
from shared.models import ApiModel
from shared.notify.base import Provider, Target
from shared.notify.destinations import vet_host_on_save
from shared.notify.message import AlertMessage

MAX_RECIPIENTS = 20


class EmailConfig(ApiModel):
    smtp_host: str = Field(max_length=253)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1024)
    sender: str = Field(alias="from", max_length=320)
    to: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS)

    @field_validator("smtp_host")
    @classmethod
    def _safe_host(cls, host: str) -> str:
        ssrf.check_hostname_syntax(host)
        vet_host_on_save(host)
        return host

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, address: str) -> str:
        return _email_address(address)

    @field_validator("to")
    @classmethod
    def _recipient_addresses(cls, addresses: list[str]) -> list[str]:
        cleaned = [_email_address(a) for a in addresses]
        if len({a.lower() for a in cleaned}) != len(cleaned):
            raise ValueError("recipients must not repeat")
        return cleaned

    @model_validator(mode="after")
    def _login_pair(self) -> EmailConfig:
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        return self


_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$|^[^@\s,;<>\"]+@localhost$")


def _email_address(address: str) -> str:
    if not _EMAIL.match(address.strip()):
        raise ValueError(f"'{address}' is not an email address")
    return address.strip()


def _email_url(config: Mapping[str, Any], recipient: str) -> str:
    security = config.get("security", "starttls")
    scheme = "mailtos" if security == "ssl" else "mailto"
    mode = {"starttls": "starttls", "ssl": "ssl", "none": "insecure"}[security]
    auth = ""
    if config.get("username"):
        auth = f"{quote(config['username'], safe='')}:{quote(config.get('password') or '', safe='')}@"
    host = config["smtpHost"]
    host = f"[{host}]" if ":" in host else host
    query = urlencode(
        {
            "smtp": config["smtpHost"],
            "from": config["from"],
            "to": recipient,
            "mode": mode,
            "format": "html",
            "name": "Supercheck",
        }
    )
    return f"{scheme}://{auth}{host}:{config['smtpPort']}/?{query}"


class EmailProvider(Provider):
    config_model = EmailConfig
    body_format = "html"
    secret_fields = frozenset({"password"})

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        # One target per address: each recipient is reported (SendResult.recipients) and retried alone.
        return [
            Target(_email_url(config, address), address, (config["smtpHost"], config["smtpPort"]))
            for address in config["to"]
        ]

    def body(self, config: Mapping[str, Any], message: AlertMessage) -> str:
        return message.html


provider = EmailProvider()
