"""Every request shape the API and the functions accept: bodies and query strings (camelCase JSON), validated
once here with errors that name their field. Answers are in shared/api/schemas.py."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, field_validator, model_validator
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from shared.checks import CHECK_TYPES
from shared.checks.spec import CheckSpec
from shared.errors import FieldError
from shared.models import AlertConfig, AlertDeliveryStatus, AlertKind, ApiModel, LocationConfig, MonitorStatus
from shared.synthetic.models import (
    MAX_SCRIPT_BYTES,
    MAX_VARIABLE_BYTES,
    VARIABLE_NAME,
    decode_base64_script,
    script_problem,
)

# --- monitors ---------------------------------------------------------------------------------------


class MonitorCreate(CheckSpec):
    name: str = Field(min_length=1, max_length=200)
    frequency_minutes: int = Field(default=5, ge=1, le=1440)
    enabled: bool = True
    location_config: LocationConfig = Field(default_factory=LocationConfig)
    alert_config: AlertConfig = Field(default_factory=AlertConfig)
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("frequency_minutes")
    @classmethod
    def _often_enough_for_type(cls, minutes: int, info) -> int:
        """A check type may need a longer interval (synthetic_test: 5 minutes, so journeys never overlap)."""
        check_type = CHECK_TYPES.get(info.data.get("type"))
        minimum = getattr(check_type.config_model, "min_frequency_minutes", 1) if check_type else 1
        if minutes < minimum:
            raise ValueError(f"must be at least {minimum} for {check_type.name} monitors")
        return minutes

    @model_validator(mode="after")
    def _timeout_fits_frequency(self) -> MonitorCreate:
        """A run's deadline is capped at its frequency: a check that cannot report inside it is refused, so a
        target that never answers ends its run `timeout` (down), never `unknown` (see README, "Deadlines")."""
        from shared.checks import configured_timeout
        from shared.rules.deadlines import timeout_problem
        from shared.settings import get_settings

        grace = get_settings().run_deadline_grace_seconds
        problem = timeout_problem(configured_timeout(self.type, self.config), grace, self.frequency_minutes)
        if problem:
            without_retries = {key: value for key, value in self.config.items() if key != "retry"}
            retries_at_fault = "retry" in self.config and not timeout_problem(
                configured_timeout(self.type, without_retries), grace, self.frequency_minutes
            )
            raise FieldError("config.retry" if retries_at_fault else "config.timeoutSeconds", problem)
        return self


class RunNowRequest(ApiModel):
    """Run monitors now: by id, by tag, or both. CI calls this after a deploy."""

    monitor_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    tag: str | None = Field(default=None, min_length=1, max_length=100)


class ApiKeyCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100)


class ProjectCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)


class ProviderPatch(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    config: dict[str, Any] | None = None
    enabled: bool | None = None


def _provider_types() -> list[str]:
    # loaded with the first provider saved (or the OpenAPI document): the API's other endpoints (and its health)
    # never load the notifier
    from shared.notify import PROVIDERS

    return list(PROVIDERS)


def _known_provider_type(value: Any) -> str:
    types = _provider_types()
    if isinstance(value, str) and value in types:
        return value
    expected = ", ".join(repr(name) for name in types[:-1]) + f" or {types[-1]!r}"
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


class _ProviderType:
    """A Literal of shared.notify.PROVIDERS' names, read on first use: the same errors and schema, no import."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(_known_provider_type)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"enum": _provider_types(), "type": "string"}


class NotificationProviderCreate(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    type: Annotated[str, _ProviderType]
    config: dict[str, Any]

    @model_validator(mode="after")
    def _config_fits_type(self) -> NotificationProviderCreate:
        from shared.notify import validate_provider_config  # see _provider_types

        self.config = validate_provider_config(self.type, self.config)
        return self


class MaintenanceWindowCreate(ApiModel):
    """Alerts are suppressed (and recorded as such) inside a window: one-off, or recurring in cron form."""

    name: str = Field(min_length=1, max_length=200)
    monitor_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)  # empty: whole project
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = Field(default=None, max_length=200)
    duration_minutes: int | None = Field(default=None, ge=1, le=10080)
    timezone: str = Field(default="UTC", max_length=64)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        from croniter import croniter

        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a cron expression (e.g. '0 2 * * 0' for Sundays at 02:00)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _one_off_or_recurring(self) -> MaintenanceWindowCreate:
        if self.cron is not None:
            if self.starts_at is not None or self.ends_at is not None:
                raise FieldError(
                    "startsAt", "a recurring window (cron) takes durationMinutes, not startsAt/endsAt"
                )
            if self.duration_minutes is None:
                raise FieldError("durationMinutes", "is required with cron")
            return self
        if self.duration_minutes is not None:
            raise FieldError("cron", "is required with durationMinutes")
        if self.starts_at is None or self.ends_at is None:
            raise FieldError(
                "startsAt",
                "a window needs startsAt and endsAt (one-off) or cron and durationMinutes (recurring)",
            )
        if self.ends_at <= self.starts_at:
            raise FieldError("endsAt", "must be after startsAt")
        return self


# --- status pages and their incidents ---------------------------------------------------------------

# migration 0012's check on status_pages.slug, so a bad slug is refused naming the field, not by the database
STATUS_PAGE_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# top-level paths of the status function (/function/status/api/badge/..., its health): never a page's slug
RESERVED_SLUGS = frozenset({"api", "health", "static", "assets", "feeds"})
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_PAGE_MONITORS = 500

IncidentStatus = Literal["investigating", "identified", "monitoring", "resolved"]
IncidentImpact = Literal["none", "minor", "major", "critical"]


def _valid_slug(slug: str) -> str:
    if not STATUS_PAGE_SLUG.fullmatch(slug):  # fullmatch: "$" alone lets a trailing newline through
        raise ValueError(
            "must be 1 to 64 lower-case letters, digits and hyphens, starting and ending with a letter or digit"
        )
    if slug in RESERVED_SLUGS:
        raise ValueError(f"'{slug}' is reserved by the status function; choose another")
    return slug


def _valid_host(value: str | None) -> str | None:
    """A host name as a browser sends it in Host: lower-cased, without a trailing dot, port or scheme."""
    if value is None:
        return None
    host = value.strip().lower().removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            "must be a host name such as status.example.com (no scheme, port or path; IDNs in xn-- form)"
        )
    if labels[-1].isdigit():
        raise ValueError("must be a host name, not an IP address")
    return host


class StatusPageGroup(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    monitor_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_PAGE_MONITORS)


def _groups_problem(groups: list[StatusPageGroup]) -> FieldError | None:
    """A monitor appears once on a page (in one group), and two groups of a page never share a name."""
    seen_monitors: dict[uuid.UUID, int] = {}
    seen_names: dict[str, int] = {}
    for g, group in enumerate(groups):
        if group.name in seen_names:
            return FieldError(f"groups.{g}.name", f"group {seen_names[group.name]} has that name already")
        seen_names[group.name] = g
        for i, monitor_id in enumerate(group.monitor_ids):
            if monitor_id in seen_monitors:
                first = seen_monitors[monitor_id]
                where = "earlier in this group" if first == g else f"in group {first} already"
                return FieldError(f"groups.{g}.monitorIds.{i}", f"monitor {monitor_id} is {where}")
            seen_monitors[monitor_id] = g
    if len(seen_monitors) > MAX_PAGE_MONITORS:
        return FieldError("groups", f"a page holds at most {MAX_PAGE_MONITORS} monitors")
    return None


class StatusPageCreate(ApiModel):
    """A public status page: its slug (unique across projects) names it at /function/status/<slug>."""

    slug: str = Field(description="1-64 of a-z, 0-9 and '-', not starting or ending with '-'")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    groups: list[StatusPageGroup] = Field(default_factory=list, max_length=50)
    custom_domain: str | None = Field(
        default=None, max_length=253, description="a host name that reaches the page by its Host header"
    )
    show_response_times: bool = False
    show_uptime: bool = True
    published: bool = True

    @field_validator("slug")
    @classmethod
    def _slug(cls, slug: str) -> str:
        return _valid_slug(slug)

    @field_validator("custom_domain")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        return _valid_host(host)

    @model_validator(mode="after")
    def _each_monitor_once(self) -> StatusPageCreate:
        if problem := _groups_problem(self.groups):
            raise problem
        return self


class StatusPagePatch(ApiModel):
    """Only the fields given change; groups, when given, replace the page's groups whole."""

    slug: str | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    groups: list[StatusPageGroup] | None = Field(default=None, max_length=50)
    custom_domain: str | None = Field(default=None, max_length=253, description="null removes it")
    show_response_times: bool | None = None
    show_uptime: bool | None = None
    published: bool | None = None

    @field_validator("slug")
    @classmethod
    def _slug(cls, slug: str | None) -> str | None:
        return None if slug is None else _valid_slug(slug)

    @field_validator("custom_domain")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        return _valid_host(host)

    @model_validator(mode="after")
    def _given_fields_hold_values(self) -> StatusPagePatch:
        for name in (
            "slug",
            "title",
            "description",
            "groups",
            "show_response_times",
            "show_uptime",
            "published",
        ):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise FieldError(StatusPagePatch.model_fields[name].alias or name, "may not be null")
        if self.groups is not None and (problem := _groups_problem(self.groups)):
            raise problem
        return self


class StatusIncidentCreate(ApiModel):
    """An incident on a status page, public at once; its message opens the timeline."""

    status_page_id: uuid.UUID
    title: str = Field(min_length=1, max_length=200)
    status: IncidentStatus = "investigating"
    message: str = Field(default="", max_length=20_000, description="Markdown; rendered sanitised")
    monitor_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_PAGE_MONITORS, description="monitors on that page"
    )
    impact: IncidentImpact = "minor"


class StatusIncidentUpdateCreate(ApiModel):
    """An entry appended to an incident's timeline; it sets the incident's status (resolved: resolvedAt)."""

    status: IncidentStatus
    message: str = Field(min_length=1, max_length=20_000, description="Markdown; rendered sanitised")


class StatusIncidentPatch(ApiModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    impact: IncidentImpact | None = None
    monitor_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=MAX_PAGE_MONITORS, description="replaces the incident's monitors"
    )

    @model_validator(mode="after")
    def _no_nulls(self) -> StatusIncidentPatch:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise FieldError(StatusIncidentPatch.model_fields[name].alias or name, "may not be null")
        return self


# --- resources managed as code (the supercheck CLI) --------------------------------------------------

ManagedKind = Literal["notificationProviders", "monitors", "maintenanceWindows", "statusPages"]
# migration 0013's check on managed_resources.key (and shared/cli/document.py's KEY_PATTERN)
MANAGED_KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$"
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# a salted digest the CLI keeps of a resolved ${VAR} (shared/cli/diff.py), never the value
_DIGEST_PREFIX = "scrypt$"
_SECRET_KEY_WORDS = re.compile(
    r"password|passwd|token|secret|api[-_]?key|authorization|bearer", re.IGNORECASE
)


def _plaintext_secret_path(value: Any, path: tuple = ()) -> str | None:
    """The first field of a desired state whose name says secret but whose value is neither a ${VAR}
    reference nor masked: the state stores the file's shape, where secrets are references (pure)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and _SECRET_KEY_WORDS.search(str(key)):
                if item and not _ENV_REFERENCE.search(item) and not item.startswith(_DIGEST_PREFIX):
                    return ".".join(str(p) for p in (*path, key))
            elif found := _plaintext_secret_path(item, (*path, key)):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := _plaintext_secret_path(item, (*path, index)):
                return found
    return None


class ManagedResourceKey(ApiModel):
    kind: ManagedKind
    key: str = Field(pattern=MANAGED_KEY_PATTERN)


class ManagedResourceWrite(ManagedResourceKey):
    """A resource as applied: its id, the file's item (references as written) and the live resource read back."""

    resource_id: uuid.UUID
    desired: dict[str, Any] = Field(description="the file's item, ${VAR} references unresolved")
    observed: dict[str, Any] = Field(description="the resource as the API showed it after the apply (masked)")

    @model_validator(mode="after")
    def _no_plaintext_secret(self) -> ManagedResourceWrite:
        from shared.security import is_encrypted

        if found := _plaintext_secret_path(self.desired):
            raise FieldError(
                f"desired.{found}", "a secret is stored as its ${VAR} reference, never in plaintext"
            )
        if any(is_encrypted(text) for text in _strings(self.desired) + _strings(self.observed)):
            raise FieldError("desired", "holds an encrypted value; the state keeps references and masks only")
        return self


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


class ManagedClaimRequest(ApiModel):
    """Claim the state before an apply writes: refused (409) if the generation moved or another claim holds."""

    expected_generation: int = Field(ge=0, description="the generation the plan read")
    ttl_seconds: int = Field(
        default=900, ge=10, le=3600, description="how long the claim holds unless recorded"
    )


class ManagedApplyRecord(ApiModel):
    """An apply, recorded after its changes went through the API: compare-and-set on the state's generation
    and the apply's claim."""

    expected_generation: int = Field(ge=0, description="the generation the plan read; 409 if it has moved")
    claim_id: uuid.UUID = Field(description="from POST /managed-resources/claims")
    message: str | None = Field(default=None, max_length=2000)
    commit_sha: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,64}$", description="GITHUB_SHA")
    upserts: list[ManagedResourceWrite] = Field(default_factory=list, max_length=5000)
    deletes: list[ManagedResourceKey] = Field(default_factory=list, max_length=5000)
    created: list[str] = Field(default_factory=list, max_length=5000, description="kind/key created")
    updated: list[str] = Field(default_factory=list, max_length=5000, description="kind/key updated")
    deleted: list[str] = Field(default_factory=list, max_length=5000, description="kind/key deleted")


# --- synthetic tests and project variables -------------------------------------------------------


class _ScriptInput(ApiModel):
    """`script` as Python text, or `scriptBase64`; at most one of them."""

    script: str | None = None
    script_base64: str | None = Field(default=None, max_length=MAX_SCRIPT_BYTES * 2)

    @field_validator("script_base64")
    @classmethod
    def _decodes(cls, encoded: str | None) -> str | None:
        if encoded is None:
            return None
        script = decode_base64_script(encoded)
        if problem := script_problem(script):
            raise ValueError(f"decoded script {problem}")
        return script

    @model_validator(mode="after")
    def _one_script(self):
        if self.script is not None and self.script_base64 is not None:
            raise ValueError("give either script or scriptBase64, not both")
        if self.script_base64 is not None:
            self.script, self.script_base64 = self.script_base64, None
        return self

    @field_validator("script")
    @classmethod
    def _runnable(cls, script: str | None) -> str | None:
        if script is not None and (problem := script_problem(script)):
            raise ValueError(problem)
        return script


class SyntheticTestCreate(_ScriptInput):
    title: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _script_required(self) -> SyntheticTestCreate:
        if self.script is None:
            raise ValueError("script (or scriptBase64) is required")
        return self


class SyntheticTestUpdate(_ScriptInput):
    title: str | None = Field(default=None, min_length=1, max_length=200)


class ProjectVariableCreate(ApiModel):
    name: str
    value: str = Field(max_length=MAX_VARIABLE_BYTES)
    is_secret: bool = False

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not VARIABLE_NAME.match(name):
            raise ValueError(
                "must start with a letter or underscore and hold only letters, digits, underscores (max 64)"
            )
        return name


class ProjectVariableUpdate(ApiModel):
    value: str | None = Field(default=None, max_length=MAX_VARIABLE_BYTES)
    is_secret: bool | None = None


# --- the schedule function ------------------------------------------------------------------------


class RunRequest(ApiModel):
    """Body of a signed internal POST /function/schedule: empty for a cron tick, or monitors to run now (a
    caller with an API key sends a RunNowRequest instead, run in its project).

    A cron call ticks every `tickSeconds` for `windowSeconds` (SCHEDULE_WINDOW_SECONDS, e.g. 55 under a
    once-a-minute cron), so due times are met although cron itself fires once a minute; each tick also claims
    runs due within SCHEDULE_LOOKAHEAD_SECONDS, which start on their slot.
    """

    monitor_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    window_seconds: float | None = Field(default=None, ge=0, le=300)
    tick_seconds: float = Field(default=0.5, ge=0.1, le=60)


# --- query strings ---------------------------------------------------------------------------------


class PageQuery(ApiModel):
    page: int = Field(default=1, ge=1, le=100_000)
    limit: int = Field(default=10, ge=1, le=100)


MONITOR_SORT_KEYS = ("name", "status", "type", "lastCheckAt", "createdAt")


class MonitorFilterQuery(ApiModel):
    """The filters the monitor list and its status counts share."""

    type: str | None = None
    tag: str | None = Field(default=None, max_length=100)
    search: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Case-insensitive substring of the name or the target; the target is searched with its "
        "credentials (userinfo, secret-named query values) removed, as it is shown masked",
    )


class MonitorListQuery(MonitorFilterQuery, PageQuery):
    status: MonitorStatus | Literal["paused"] | None = Field(
        default=None, description="A stored status; paused lists the monitors that are not enabled"
    )
    sort: str | None = Field(
        default=None,
        description=f"One of {', '.join(MONITOR_SORT_KEYS)}; a leading '-' sorts descending. "
        "Default: newest first",
    )
    include: Literal["summary"] | None = Field(
        default=None, description="summary: each monitor's last 24 hours (uptime, average, sparkline)"
    )

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, sort: str | None) -> str | None:
        if sort is not None and sort.removeprefix("-") not in MONITOR_SORT_KEYS:
            raise ValueError(f"must be one of {', '.join(MONITOR_SORT_KEYS)}, optionally after '-'")
        return sort


class ResultsQuery(PageQuery):
    location: str | None = Field(default=None, min_length=1, max_length=64)
    date: dt.date | None = Field(
        default=None, description="YYYY-MM-DD, the local day given by timezoneOffset"
    )
    timezone_offset: int = Field(
        default=0,
        ge=-840,
        le=840,
        description="minutes to add to local time to get UTC, as JavaScript's Date.getTimezoneOffset() (UTC+2 is -120)",
    )

    @field_validator("date", mode="before")
    @classmethod
    def _iso_day(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("must be a date as YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def _day_representable(self) -> ResultsQuery:
        if self.date is not None:
            try:
                self.day_bounds()
            except OverflowError:
                raise FieldError(
                    "date", "with timezoneOffset, the day starts or ends outside years 1 to 9999"
                ) from None
        return self

    def day_bounds(self) -> tuple[datetime, datetime]:
        """The UTC instants the local day `date` (at timezoneOffset) starts and ends."""
        assert self.date is not None
        start = datetime.combine(self.date, dt.time(), tzinfo=UTC) + dt.timedelta(
            minutes=self.timezone_offset
        )
        return start, start + dt.timedelta(days=1)


MAX_RUN_IDS = 100  # 100 ids make a query string of about 3.7 KB, under every proxy's URL limit


class RunsQuery(ApiModel):
    ids: str = Field(
        description=f"Comma-separated run ids, at most {MAX_RUN_IDS} (as POST /monitors/run returns)"
    )

    @field_validator("ids")
    @classmethod
    def _uuids(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts:
            raise ValueError("give at least one run id")
        if len(parts) > MAX_RUN_IDS:
            raise ValueError(f"at most {MAX_RUN_IDS} run ids at once")
        for part in parts:
            try:
                uuid.UUID(part)
            except ValueError:
                raise ValueError(f"'{part[:40]}' is not a run id") from None
        return ",".join(parts)

    @property
    def run_ids(self) -> list[uuid.UUID]:
        return [uuid.UUID(part) for part in self.ids.split(",")]


class StatsQuery(ApiModel):
    days: int = Field(default=7, ge=1, le=90)


class UptimeQuery(ApiModel):
    days: int = Field(default=90, ge=1, le=366)


# The keys of shared.rules.series.PLANS (named here, so validating a query loads no retention rules)
SeriesRange = Literal["1h", "24h", "7d", "30d", "90d"]


class SeriesQuery(ApiModel):
    range: SeriesRange = "24h"


LiveEventType = Literal["result", "status_change", "alert"]


class EventsQuery(ApiModel):
    monitor_id: uuid.UUID | None = None
    types: str | None = Field(
        default=None,
        description="Comma-separated event types to receive (result, status_change, alert); all when absent. "
        "A page of many monitors may want only status changes: results arrive once per check and location",
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = sorted({name.strip() for name in value.split(",")} - set(get_args(LiveEventType)))
            if unknown:
                raise ValueError(f"unknown event type {', '.join(unknown)}; use result, status_change, alert")
        return value

    @property
    def wanted_types(self) -> frozenset[str] | None:
        return frozenset(name.strip() for name in self.types.split(",")) if self.types else None


class MonitorAlertsQuery(PageQuery):
    """Filters of GET /monitors/{id}/alerts; `from` and `to` bound createdAt (both inclusive)."""

    status: AlertDeliveryStatus | None = None
    kind: AlertKind | None = None
    created_from: datetime | None = Field(
        default=None, alias="from", description="ISO 8601; UTC if no offset"
    )
    created_to: datetime | None = Field(default=None, alias="to", description="ISO 8601; UTC if no offset")

    @field_validator("created_from", "created_to")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _ordered_range(self) -> MonitorAlertsQuery:
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise FieldError("from", "must be at or before to")
        return self


class AlertHistoryQuery(MonitorAlertsQuery):
    """Filters of GET /alerts: those of one monitor's alerts, and which monitor."""

    monitor_id: uuid.UUID | None = None


class IncidentsQuery(PageQuery):
    days: int = Field(default=90, ge=1, le=366)


class StatusIncidentListQuery(PageQuery):
    status_page_id: uuid.UUID | None = None
    status: IncidentStatus | None = None
    draft: bool | None = Field(default=None, description="true: automatic drafts only; false: published only")


class RegionsQuery(ApiModel):
    hours: int = Field(default=24, ge=1, le=720)


# --- alert policy backtest (POST /monitors/{id}/alert-policy/backtest) -------------------------------


class AlertPolicyBacktest(ApiModel):
    """A candidate alert policy, replayed over the monitor's stored runs of the last `days` by the same rules as
    live alerting (from a fresh monitor's alert state, with the project's maintenance windows). Writes nothing."""

    alert_config: AlertConfig = Field(description="The candidate policy, as a monitor's alertConfig")
    days: int = Field(default=7, ge=1, le=30, description="How many days of stored runs to replay (1-30)")
