"""Monitors set aside: a stored row that no longer validates (an unknown type, a config whose budget cannot be
read, a location or alert config of an old shape) is marked `error` with its reason, audited, and left out of
the schedule until it is saved again, so it cannot roll back the claim or finalize batch of every other monitor.
Used by schedule (shared/pipeline/schedule.py) and aggregate (shared/pipeline/aggregate.py)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from psycopg import AsyncConnection
from pydantic import ValidationError

from shared.checks import CHECK_TYPES, configured_timeout
from shared.errors import describe_error
from shared.models import AlertConfig, LocationConfig
from shared.rules.locations import expected_locations

# Compare-and-set on the reason: a monitor set aside again for the same reason (a redelivered batch, two ticks)
# writes neither the row nor the audit log a second time.
_SET_ASIDE = """
with aside as (
    update monitors m set status = 'error', status_reason = r.reason, next_run_at = null
    from unnest(%s::uuid[], %s::text[]) as r(id, reason)
    where m.id = r.id and m.status_reason is distinct from r.reason
    returning m.id, m.project_id, r.reason
)
insert into audit_log (project_id, api_key_id, action, object_type, object_id, changes)
select project_id, null, 'monitor.set_aside', 'monitor', id::text, jsonb_build_object('statusReason', reason)
from aside
"""


async def set_aside(conn: AsyncConnection, reasons: dict[uuid.UUID, str]) -> None:
    """In the caller's transaction, which goes on with the other monitors."""
    if reasons:
        await conn.execute(_SET_ASIDE, (list(reasons), list(reasons.values())))


def _first_error(field: str, error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join((field, *(str(part) for part in first["loc"])))
    return f"{where}: {describe_error(first)}"


@lru_cache(maxsize=4096)
def timeout_budget(check_type: str, config_text: str) -> float | str:
    """A stored (type, config)'s check budget in seconds, or why it has none (the reason it is set aside)."""
    if check_type not in CHECK_TYPES:
        return f"type: unknown monitor type '{check_type}'; expected one of: {', '.join(sorted(CHECK_TYPES))}"
    config = json.loads(config_text)
    if not isinstance(config, dict):
        return "config: must be an object"
    try:
        return configured_timeout(check_type, config)
    except (TypeError, ValueError) as error:
        return f"config: its timeout cannot be read ({error})"


@lru_cache(maxsize=4096)
def location_config(raw: str | None) -> LocationConfig | str:
    """A stored location config, or why it no longer validates."""
    try:
        return LocationConfig.model_validate_json(raw or "{}")
    except ValidationError as error:
        return _first_error("locationConfig", error)


@lru_cache(maxsize=4096)
def alert_config(raw: str | None) -> AlertConfig | str:
    """A stored alert config, or why it no longer validates."""
    try:
        return AlertConfig.model_validate_json(raw or "{}")
    except ValidationError as error:
        return _first_error("alertConfig", error)


@dataclass
class Profiles:
    """What Python knows of the distinct stored configs of a claimed batch: each config's deadline budget and
    where each location config sends its runs, as the record statement's JSON parameters; and those it cannot
    run, which set their monitors aside."""

    budgets: dict[str, float] = field(default_factory=dict)  # "type config" -> seconds, grace included
    location_lists: dict[str, str] = field(default_factory=dict)  # location config -> "loc,loc"
    problems: dict[tuple[str, str, str], str] = field(
        default_factory=dict
    )  # (type, config, locations) -> why

    def params(self) -> dict:
        return {"budgets": json.dumps(self.budgets), "location_lists": json.dumps(self.location_lists)}


def examine_profiles(profiles: list[tuple], regions: list[str], grace_seconds: float) -> Profiles:
    """profiles: (type, config text, location config text, ...) rows, one per distinct stored combination."""
    examined = Profiles()
    for check_type, config, locations, *_ in profiles:
        budget = timeout_budget(check_type, config)
        parsed = location_config(locations)
        if isinstance(budget, str) or isinstance(parsed, str):
            examined.problems[(check_type, config, locations)] = budget if isinstance(budget, str) else parsed
            continue
        examined.budgets[f"{check_type} {config}"] = budget + grace_seconds
        examined.location_lists[locations] = ",".join(expected_locations(parsed, regions))
    return examined
