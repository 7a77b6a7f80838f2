"""What to check (a type from the check table, its target, a config that fits that type), and the trial: one
check of such a spec run at once, stored nowhere. Used by the API's monitor bodies and by every check function."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from shared.checks import CHECK_TYPES
from shared.errors import PrefixedValidationError
from shared.models import ApiModel, CheckJob

TYPE_ALIASES = {"http": "http_request"}
# Where a trial runs; it must leave no per-location note behind (e.g. the certificate schedule).
TRIAL_LOCATION = "direct"


def _retry_schema() -> dict[str, Any]:
    """config.retry in the OpenAPI document (built with it, not at import)."""
    from shared.checks.base import RetryPolicy

    return RetryPolicy.model_json_schema(by_alias=True)


class CheckSpec(ApiModel):
    """What to check: a type from the check table, its target, and a config that fits that type."""

    type: str
    target: str = Field(min_length=1, max_length=2048)
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The type's settings (see the README's check types); every type but synthetic_test also "
        "takes `retry`",
        json_schema_extra=lambda schema: schema.setdefault("properties", {}).update(retry=_retry_schema()),
    )

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        canonical = TYPE_ALIASES.get(value, value)
        if canonical not in CHECK_TYPES:
            raise ValueError(
                f"unknown monitor type '{value}'; expected one of: {', '.join(sorted(CHECK_TYPES))}"
            )
        return canonical

    @model_validator(mode="after")
    def _config_fits_type(self, info: ValidationInfo) -> CheckSpec:
        check_type = CHECK_TYPES[self.type]
        try:
            # the context carries the Sealing (shared.checks.credentials) that encrypts the config's secrets
            parsed = check_type.config_model.model_validate(
                {**self.config, "target": self.target}, context=info.context
            )
        except ValidationError as error:
            raise PrefixedValidationError(error, prefix=("config",)) from None
        self.config = parsed.model_dump(by_alias=True, exclude={"target"}, exclude_none=True)
        return self


class CheckTrial(CheckSpec):
    """A trial: one check of a config sent straight to a check function, before or instead of saving a
    monitor; nothing is stored."""

    location: str = Field(
        default=TRIAL_LOCATION,
        min_length=1,
        max_length=64,
        description="Where to run it: direct (the API's own region), or a configured location, whose region's "
        "gateway runs it when SC_REGION_GATEWAY_URLS names one",
    )

    def as_job(self, project_id: uuid.UUID) -> CheckJob:
        """project_id: the caller's, which the trial's credentials were sealed to."""
        now = datetime.now(UTC)
        return CheckJob(
            run_id=uuid.uuid4(),
            monitor_id=uuid.uuid4(),
            project_id=project_id,
            # a trial wherever it runs: a job's location keys per-location notes (the certificate schedule),
            # which a one-off check must not leave behind
            location=TRIAL_LOCATION,
            type=self.type,
            target=self.target,
            config=self.config,
            scheduled_at=now,
            deadline=now,
        )


class ProjectTrial(CheckTrial):
    """A trial the API sends on behalf of a caller's project, signed: the check function then knows the project
    (a synthetic_test trial may only run that project's tests, with that project's variables)."""

    project_id: uuid.UUID
