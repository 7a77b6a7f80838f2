"""Alert decisions as one pure function: thresholds, at most 3 failure alerts per incident, recovery."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Literal

from shared.models import FAILED_STATUSES, AlertConfig

MAX_FAILURE_ALERTS = 3
AlertKind = Literal["failure", "recovery"]


@dataclass(frozen=True)
class AlertState:
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failure_alerts_sent: int = 0
    failed_runs_since_alert: int = 0

    @classmethod
    def from_json(cls, data: dict | None) -> AlertState:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AlertAction:
    kind: AlertKind
    sequence_number: int = 1  # 1 for the first failure alert, 2-3 for reminders
    suppressed_reason: str | None = None


@dataclass(frozen=True)
class Decision:
    state: AlertState
    actions: list[AlertAction] = field(default_factory=list)


def reminder_interval(policy: AlertConfig) -> int:
    return policy.reminder_interval or max(5, 2 * policy.failure_threshold)


def decide(state: AlertState, run_status: str, policy: AlertConfig, now: datetime | None = None) -> Decision:
    """What a finalized run does to a monitor's alert state, and which alerts it sends.

    'unknown' runs (no location reported) change nothing; degraded runs count as up.
    """
    if run_status == "unknown":
        return Decision(state)
    if run_status in FAILED_STATUSES:
        return _after_failure(state, policy)
    return _after_success(state, policy)


def _after_failure(state: AlertState, policy: AlertConfig) -> Decision:
    state = replace(
        state,
        consecutive_failures=state.consecutive_failures + 1,
        consecutive_successes=0,
        failed_runs_since_alert=state.failed_runs_since_alert + 1,
    )
    if not (policy.enabled and policy.alert_on_failure):
        return Decision(state)
    first_alert_due = (
        state.failure_alerts_sent == 0 and state.consecutive_failures >= policy.failure_threshold
    )
    reminder_due = (
        0 < state.failure_alerts_sent < MAX_FAILURE_ALERTS
        and state.failed_runs_since_alert >= reminder_interval(policy)
    )
    if not (first_alert_due or reminder_due):
        return Decision(state)
    sent = state.failure_alerts_sent + 1
    return Decision(
        replace(state, failure_alerts_sent=sent, failed_runs_since_alert=0),
        [AlertAction("failure", sequence_number=sent)],
    )


def _after_success(state: AlertState, policy: AlertConfig) -> Decision:
    successes = state.consecutive_successes + 1
    if successes < policy.recovery_threshold:
        # A blip: the failure sequence stays open, but failures are no longer consecutive.
        return Decision(replace(state, consecutive_successes=successes, consecutive_failures=0))
    recovered = AlertState(consecutive_successes=successes)
    if state.failure_alerts_sent and policy.enabled and policy.alert_on_recovery:
        return Decision(recovered, [AlertAction("recovery")])
    return Decision(recovered)
