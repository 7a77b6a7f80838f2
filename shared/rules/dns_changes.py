"""Whether a DNS check's answer set changed since the previous one at the same location (pure), and how the change
reads: "records changed: - 192.0.2.10 + 192.0.2.99". Used by the check path (shared/pipeline/check.py), which
notes a change on the result, and by aggregate, which alerts on it where a monitor asks (config.alertOnChange)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.rules.alerts import AlertAction, AlertPolicy


@dataclass(frozen=True)
class AnswerChange:
    removed: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def text(self) -> str:
        parts = [f"- {value}" for value in self.removed] + [f"+ {value}" for value in self.added]
        return "records changed: " + " ".join(parts)

    def to_json(self) -> dict[str, list[str]]:
        return {"removed": list(self.removed), "added": list(self.added)}


def answer_values(details: Mapping[str, Any] | None) -> list[str] | None:
    """The values of a DNS result's answers; None for a result that got no answer at all (a timeout, no resolver),
    which says nothing about the records."""
    if not isinstance(details, Mapping) or "rcode" not in details:
        return None
    answers = details.get("answers")
    if not isinstance(answers, list):
        return None
    return [str(a["value"]) for a in answers if isinstance(a, Mapping) and "value" in a]


def answer_change(previous: Iterable[str] | None, current: Iterable[str] | None) -> AnswerChange | None:
    """None when either side had no answer, or the sets are equal (order, duplicates and TTLs do not count)."""
    if previous is None or current is None:
        return None
    before, after = set(previous), set(current)
    if before == after:
        return None
    return AnswerChange(tuple(sorted(before - after)), tuple(sorted(after - before)))


def change_alerts(
    alert_on_change: bool,
    changes: Mapping[str, Mapping[str, Any]],
    policy: AlertPolicy | None,
    now: datetime,
    scheduled_at: datetime | None,
) -> list[AlertAction]:
    """A run whose answers changed at some location alerts once (kind dns_changed), even when the new values
    still match, where the monitor asks (config.alertOnChange) and its alerts are on; inside a maintenance
    window or while muted it is recorded as suppressed, like any alert. changes: location -> {removed, added}."""
    from shared.rules.alerts import AlertAction

    if not (alert_on_change and changes and policy is not None and policy.config.enabled):
        return []
    reason = policy.suppression_reason(now, scheduled_at)
    return [
        AlertAction(
            "dns_changed",
            suppressed_reason=reason,
            details={"changes": dict(sorted(changes.items()))},
            reason="; ".join(
                f"{location}: {AnswerChange(tuple(c.get('removed', ())), tuple(c.get('added', ()))).text}"
                for location, c in sorted(changes.items())
            ),
        )
    ]
