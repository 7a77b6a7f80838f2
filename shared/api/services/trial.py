"""Trying a check config before saving it: the API asks the check function itself, exactly as OpenFaaS would,
in a call signed with the internal token that names the caller's project (the function trusts only that)."""

from __future__ import annotations

import json
import uuid

import httpx

from shared import internal_auth
from shared.checks import CHECK_TYPES
from shared.checks.spec import TRIAL_LOCATION, CheckTrial
from shared.errors import ApiError
from shared.models import CheckOutcome
from shared.settings import Settings, get_settings


def trial_gateway(location: str, settings: Settings) -> str:
    """The gateway that runs a trial at `location`: its region's, when configured, else the API's own."""
    if location != TRIAL_LOCATION and location not in settings.locations:
        known = ", ".join([TRIAL_LOCATION, *settings.locations])
        raise ApiError(
            400,
            "validation_error",
            f"location: '{location}' is not a location here; expected one of: {known}",
            "location",
        )
    return settings.region_gateway_urls.get(location, settings.gateway_url)


async def run_trial(check: CheckTrial, project_id: uuid.UUID) -> CheckOutcome:
    """POSTs the config to the type's check function (same SSRF rules and validation as scheduled checks)."""
    function = CHECK_TYPES[check.type].function
    url = f"{trial_gateway(check.location, get_settings()).rstrip('/')}/function/{function}"
    body = json.dumps({**check.model_dump(mode="json", by_alias=True), "projectId": str(project_id)}).encode()
    headers = {"Content-Type": "application/json", **internal_auth.sign(body)}
    try:
        async with httpx.AsyncClient(timeout=330) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise ApiError(
            502, "check_unavailable", f"{function} could not be reached ({type(error).__name__})"
        ) from None
    if response.status_code in (400, 404):  # invalid, or naming what the project does not have
        error = response.json().get("error", {})
        code = "validation_error" if response.status_code == 400 else "not_found"
        raise ApiError(response.status_code, code, error.get("message", "invalid check"), error.get("field"))
    if response.status_code // 100 != 2:
        raise ApiError(502, "check_failed", f"{function} answered {response.status_code}")
    return CheckOutcome.model_validate(response.json())
