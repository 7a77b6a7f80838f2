"""The generic webhook provider: our own JSON body (a {{variable}} template's, or every variable), POSTed.

Used by the alert function and the API's provider endpoints, through shared.notify.PROVIDERS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from shared.models import ApiModel
from shared.notify.base import Failure, Provider, Target, check_destination, classify_failure
from shared.notify.message import SAMPLE_VARIABLES, AlertMessage, json_escape, render_template

WEBHOOK_TIMEOUT_SECONDS = (5.0, 10.0)  # connect, read


class WebhookConfig(ApiModel):
    url: str = Field(max_length=2048)
    # JSON with {{var}} placeholders (see TEMPLATE_VARIABLES); without one the body is every variable as JSON.
    template: str | None = Field(default=None, max_length=20_000)

    @field_validator("url")
    @classmethod
    def _safe_url(cls, url: str) -> str:
        check_destination(url)
        return url

    @field_validator("template", mode="before")
    @classmethod
    def _json_template(cls, template: Any) -> Any:
        if isinstance(template, dict | list):
            template = json.dumps(template)
        if isinstance(template, str):
            try:
                json.loads(render_template(template, SAMPLE_VARIABLES, escape=json_escape))
            except ValueError as error:
                raise ValueError(f"is not JSON once its {{{{variables}}}} are filled in ({error})") from None
        return template


def webhook_body(config: Mapping[str, Any], message: AlertMessage) -> str:
    template = config.get("template")
    if template:
        return render_template(template, message.variables, escape=json_escape)
    return json.dumps(message.variables)


def post_webhook(url: str, body: str) -> Failure | None:
    """POSTs as Apprise's json:// would, without Apprise, which would load every service plugin for a plain POST;
    the outcome reads as an Apprise log would, so classify_failure decides retries the same way for every channel.
    """
    import requests

    try:
        response = requests.post(
            url,
            data=body.encode(),
            headers={"Content-Type": "application/json", "User-Agent": "Supercheck-Alerts/1"},
            timeout=WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        return classify_failure([("WARNING", "Webhook request timed out.")])
    except requests.RequestException as error:
        return classify_failure(
            [("WARNING", f"A Connection error occurred sending the webhook ({type(error).__name__}).")]
        )
    if not 200 <= response.status_code < 300:
        return classify_failure(
            [
                (
                    "WARNING",
                    f"Failed to send webhook notification: {response.reason}, error={response.status_code}.",
                )
            ]
        )
    return None


class WebhookProvider(Provider):
    config_model = WebhookConfig
    body_format = None
    secret_fields = frozenset({"template"})  # a template may embed a token for the receiver
    url_fields = frozenset({"url"})

    def targets(self, config: Mapping[str, Any]) -> list[Target]:
        parts = urlsplit(config["url"])
        return [Target(config["url"], guard_host=(parts.hostname or "", parts.port), post=post_webhook)]

    def body(self, config: Mapping[str, Any], message: AlertMessage) -> str:
        return webhook_body(config, message)


provider = WebhookProvider()
