"""Trying a check config before saving it: the API asks the check function itself, exactly as OpenFaaS would."""

from __future__ import annotations

import httpx

from shared.checks import CHECK_TYPES
from shared.checks.spec import CheckTrial
from shared.errors import ApiError
from shared.models import CheckOutcome
from shared.settings import get_settings


async def run_trial(check: CheckTrial, authorization: str | None = None) -> CheckOutcome:
    """POSTs the config to the type's check function (same SSRF rules and validation as scheduled checks).

    authorization: the caller's header, passed on so the check function opens the secrets sealed for its project.
    """
    function = CHECK_TYPES[check.type].function
    url = f"{get_settings().gateway_url.rstrip('/')}/function/{function}"
    try:
        async with httpx.AsyncClient(timeout=330) as client:
            response = await client.post(
                url,
                json=check.model_dump(mode="json", by_alias=True),
                headers={"Authorization": authorization} if authorization else None,
            )
    except httpx.HTTPError as error:
        raise ApiError(
            502, "check_unavailable", f"{function} could not be reached ({type(error).__name__})"
        ) from None
    if response.status_code == 400:
        error = response.json().get("error", {})
        raise ApiError(400, "validation_error", error.get("message", "invalid check"), error.get("field"))
    if response.status_code // 100 != 2:
        raise ApiError(502, "check_failed", f"{function} answered {response.status_code}")
    return CheckOutcome.model_validate(response.json())
