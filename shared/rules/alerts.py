"""Alert decisions as one pure function: triggers, at most 3 failure alerts per incident, recovery, flapping, SSL,
silences. Used by the aggregate function (shared/pipeline/aggregate.py) and the policy backtest
(shared/api/services/backtest.py), so a replay decides exactly as live alerting did."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from shared.models import FAILED_STATUSES, AlertConfig, AlertKind
from shared.rules import alert_triggers as triggers

MAX_FAILURE_ALERTS = 3
SSL_WARNING_EVERY = timedelta(hours=24)
DEFAULT_SSL_WARNING_DAYS = 30
LIMIT_REACHED = f"limit: {MAX_FAILURE_ALERTS} failure alerts already sent for this incident"


@dataclass(frozen=True)
class AlertState:
    """Per monitor, in monitors.alert_state; advanced only by aggregate, in scheduled order."""

    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failure_alerts_sent: int = 0  # this failure sequence; recovery is sent only if this is > 0
    failure_alerts_suppressed: int = 0  # decided inside a maintenance window or while muted
    failed_runs_since_alert: int = 0
    ssl_warned_at: str | None = None  # ISO time of the last 'expiring' alert sent
    ssl_suppressed_at: str | None = None  # ... and of the last one suppressed
    ssl_expired_alerted: bool = False
    # What the triggers and flap detection read, kept across incidents: (epoch, failed) of the last runs,
    # the failed runs' times that count towards failuresInWindow (cleared when an incident's first alert is
    # raised), when the current streak of failed runs began (ISO), and whether the monitor is flapping.
    recent_runs: tuple[tuple[int, int], ...] = ()
    window_failures: tuple[int, ...] = ()
    failing_since: str | None = None
    is_flapping: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AlertState:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        if "recent_runs" in known:
            known["recent_runs"] = tuple((int(when), int(failed)) for when, failed in known["recent_runs"])
        if "window_failures" in known:
            known["window_failures"] = tuple(int(when) for when in known["window_failures"])
        return cls(**known)

    def to_json(self) -> dict:
        # not asdict: its generic deep copy of recent_runs' pairs was a tenth of aggregate's CPU (py-spy); every
        # field is immutable, so the values themselves serve
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class SslFacts:
    """What a check learned about the certificate: details["ssl"] of a result ({daysUntilExpiry, expired, ...})."""

    days_until_expiry: int | None
    expired: bool
    valid_to: str | None = None
    expiring_soon: bool = False  # the check's own judgement ("expiringSoon"), honoured besides our window

    @classmethod
    def worst_of(cls, details: Iterable[Any]) -> SslFacts | None:
        """The certificate closest to expiry among the run's locations; None when no location looked at it."""
        facts = [f for f in (cls.parse(d) for d in details) if f is not None]
        if not facts:
            return None
        return min(
            facts,
            key=lambda f: (not f.expired, f.days_until_expiry if f.days_until_expiry is not None else 0),
        )

    @classmethod
    def parse(cls, ssl: Any) -> SslFacts | None:
        """Defensive: a check that skipped the certificate, or an older result shape, yields None."""
        if not isinstance(ssl, Mapping):
            return None
        days = ssl.get("daysUntilExpiry")
        days = int(days) if isinstance(days, int | float) and not isinstance(days, bool) else None
        expired = ssl.get("expired")
        expired = bool(expired) if isinstance(expired, bool) else days is not None and days <= 0
        if days is None and not expired:
            return None
        valid_to = ssl.get("validTo")
        return cls(
            days, expired, valid_to if isinstance(valid_to, str) else None, ssl.get("expiringSoon") is True
        )


@dataclass(frozen=True)
class RunOutcome:
    status: str  # up | degraded | down | unknown (the aggregated run status)
    ssl: SslFacts | None = None
    # When the run was scheduled: maintenance windows are judged then, not when it is finalized (a run checked
    # inside a window and finalized after it is still maintenance). None: judged at the decision time.
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class MaintenanceWindow:
    name: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = None
    duration_minutes: int | None = None
    timezone: str = "UTC"

    def active_at(self, now: datetime) -> bool:
        if self.cron is None:
            return (
                self.starts_at is not None
                and self.ends_at is not None
                and self.starts_at <= now < self.ends_at
            )
        try:
            local_now = now.astimezone(ZoneInfo(self.timezone))
            # get_prev is strictly before its base: nudge the base so a window starting exactly now is active.
            last_start = croniter(self.cron, local_now + timedelta(microseconds=1)).get_prev(datetime)
        except (KeyError, ValueError):  # validated on save; a row edited by hand must not stop finalization
            return False
        return now < last_start + timedelta(minutes=self.duration_minutes or 0)


@dataclass(frozen=True)
class AlertPolicy:
    config: AlertConfig
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    ssl_warning_days: int = DEFAULT_SSL_WARNING_DAYS

    def suppression_reason(self, now: datetime, run_at: datetime | None = None) -> str | None:
        """Why an alert decided at `now` about a run scheduled at `run_at` is suppressed, or None. Maintenance
        is about the run (when its target was checked); a mute is about the alert (when it would be sent)."""
        for window in self.maintenance_windows:
            if window.active_at(run_at or now):
                return f"maintenance window '{window.name}'"
        muted_until = self.config.muted_until
        if muted_until is not None and now < muted_until:
            return f"muted until {muted_until.astimezone(UTC).isoformat()}"
        return None


@dataclass(frozen=True)
class AlertAction:
    kind: AlertKind
    sequence_number: int = 1  # failure: 1 for the first alert, 2-3 for reminders
    suppressed_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = (
        ""  # why it fired, by the rule (a trigger, a recovery, a change rate); the run's facts join later
    )


@dataclass(frozen=True)
class Decision:
    state: AlertState
    actions: list[AlertAction] = field(default_factory=list)


def reminder_interval(config: AlertConfig) -> int:
    return config.reminder_interval or max(5, 2 * (config.failure_threshold or 1))


def decide(state: AlertState, outcome: RunOutcome, policy: AlertPolicy, now: datetime) -> Decision:
    """What a finalized run does to a monitor's alert state, and which alerts it sends or suppresses.

    'unknown' runs (no location reported) change nothing; degraded runs count as up. While the monitor flaps,
    down and recovery alerts are held (neither sent nor recorded): its state says what is still owed.
    """
    if outcome.status == "unknown":
        return Decision(state)
    reason = policy.suppression_reason(now, outcome.scheduled_at)
    at = outcome.scheduled_at or now
    failed = outcome.status in FAILED_STATUSES
    state = _remember(state, failed, at)
    state, flap_actions = _after_flap_check(state, policy, reason)
    if failed:
        decision = _after_failure(state, policy, reason, at)
    else:
        decision = _after_success(state, policy, reason)
    state, ssl_actions = _after_ssl_facts(decision.state, outcome.ssl, policy, now, reason)
    return Decision(state, [*flap_actions, *decision.actions, *ssl_actions])


def _remember(state: AlertState, failed: bool, at: datetime) -> AlertState:
    """The run in the history the triggers and flap detection read (in run order: decide's caller sees to it)."""
    recent = triggers.remember_run(state.recent_runs, at, failed)
    if not failed:
        return replace(state, recent_runs=recent, failing_since=None)
    return replace(
        state,
        recent_runs=recent,
        window_failures=triggers.remember_failure(state.window_failures, at),
        failing_since=state.failing_since or at.isoformat(),
    )


def _after_flap_check(
    state: AlertState, policy: AlertPolicy, reason: str | None
) -> tuple[AlertState, list[AlertAction]]:
    detection = policy.config.flap_detection
    if detection is None or not detection.enabled or not policy.config.enabled:
        return replace(state, is_flapping=False), []  # turned off: nothing held any more, nothing to say
    percent = triggers.weighted_change_percent([failed for _, failed in state.recent_runs], detection.window)
    flapping = triggers.flapping_after(state.is_flapping, percent, detection)
    if flapping == state.is_flapping:
        return state, []
    kind: AlertKind = "flapping_started" if flapping else "flapping_stopped"
    action = AlertAction(
        kind,
        suppressed_reason=reason,
        details={"changeRatePercent": round(percent, 1)},
        reason=triggers.flapping_reason(flapping, percent, detection),
    )
    return replace(state, is_flapping=flapping), [action]


def _failure_trigger(state: AlertState, config: AlertConfig, at: datetime) -> str | None:
    return triggers.trigger_reason(
        config, state.consecutive_failures, state.window_failures, state.recent_runs, state.failing_since, at
    )


def _reminder_reason(sequence_number: int) -> str:
    return f"still failing: reminder {sequence_number - 1} of {MAX_FAILURE_ALERTS - 1}"


def _after_failure(state: AlertState, policy: AlertPolicy, reason: str | None, at: datetime) -> Decision:
    state = replace(
        state,
        consecutive_failures=state.consecutive_failures + 1,
        consecutive_successes=0,
        failed_runs_since_alert=state.failed_runs_since_alert + 1,
    )
    config = policy.config
    if not (config.enabled and config.alert_on_failure) or state.is_flapping:
        return Decision(state)
    if reason is not None:
        return _suppressed_failure(state, config, reason, at)
    interval = reminder_interval(config)
    sent = state.failure_alerts_sent
    if sent >= MAX_FAILURE_ALERTS:
        if state.failed_runs_since_alert == interval:  # recorded once: where a 4th alert would have gone
            return Decision(
                state,
                [AlertAction("failure", sent + 1, suppressed_reason=LIMIT_REACHED, reason=LIMIT_REACHED)],
            )
        return Decision(state)
    if sent > 0:
        if state.failed_runs_since_alert < interval:
            return Decision(state)
        return Decision(
            replace(state, failure_alerts_sent=sent + 1, failed_runs_since_alert=0),
            [AlertAction("failure", sequence_number=sent + 1, reason=_reminder_reason(sent + 1))],
        )
    # Nobody has been told yet (a trigger just met, or a silence just ended): tell them now.
    trigger = _failure_trigger(state, config, at)
    if trigger is None:
        return Decision(state)
    return Decision(
        replace(state, failure_alerts_sent=1, failed_runs_since_alert=0, window_failures=()),
        [AlertAction("failure", sequence_number=1, reason=trigger)],
    )


def _suppressed_failure(state: AlertState, config: AlertConfig, reason: str, at: datetime) -> Decision:
    # Suppressed alerts follow the same cadence, so a long window records a few rows, not one per run.
    decided = state.failure_alerts_sent + state.failure_alerts_suppressed
    trigger = _failure_trigger(state, config, at) if decided == 0 else None
    reminder_due = 0 < decided < MAX_FAILURE_ALERTS and state.failed_runs_since_alert >= reminder_interval(
        config
    )
    if trigger is None and not reminder_due:
        return Decision(state)
    suppressed = replace(
        state,
        failure_alerts_suppressed=state.failure_alerts_suppressed + 1,
        failed_runs_since_alert=0,
        window_failures=() if trigger else state.window_failures,
    )
    return Decision(
        suppressed,
        [
            AlertAction(
                "failure",
                sequence_number=decided + 1,
                suppressed_reason=reason,
                reason=trigger or _reminder_reason(decided + 1),
            )
        ],
    )


def _after_success(state: AlertState, policy: AlertPolicy, reason: str | None) -> Decision:
    successes = state.consecutive_successes + 1
    config = policy.config
    owed = bool(state.failure_alerts_sent and config.enabled and config.alert_on_recovery)
    if successes < config.recovery_threshold or (owed and state.is_flapping):
        # A blip (the failure sequence stays open, but failures are no longer consecutive), or a recovery held
        # while flapping: the incident stays open, so it is sent once the flapping stops and the runs pass.
        return Decision(replace(state, consecutive_successes=successes, consecutive_failures=0))
    recovered = replace(AlertState(), consecutive_successes=successes, **_kept_fields(state))
    if owed:
        passed = f"{successes} consecutive run{'s' if successes != 1 else ''} passed"
        return Decision(recovered, [AlertAction("recovery", suppressed_reason=reason, reason=passed)])
    return Decision(recovered)


def _kept_fields(state: AlertState) -> dict[str, Any]:
    """What outlives an incident: the certificate's alerts, and the history the triggers and flapping read."""
    return {
        "ssl_warned_at": state.ssl_warned_at,
        "ssl_suppressed_at": state.ssl_suppressed_at,
        "ssl_expired_alerted": state.ssl_expired_alerted,
        "recent_runs": state.recent_runs,
        "window_failures": state.window_failures,
        "failing_since": state.failing_since,
        "is_flapping": state.is_flapping,
    }


def _after_ssl_facts(
    state: AlertState, ssl: SslFacts | None, policy: AlertPolicy, now: datetime, reason: str | None
) -> tuple[AlertState, list[AlertAction]]:
    if ssl is None:
        return state, []  # checks look at the certificate only now and then; no facts, no change
    in_window = ssl.expiring_soon or (
        ssl.days_until_expiry is not None and ssl.days_until_expiry <= policy.ssl_warning_days
    )
    if not ssl.expired and not in_window:
        # A healthy (or renewed) certificate: the next one to approach expiry starts afresh.
        return replace(state, ssl_warned_at=None, ssl_suppressed_at=None, ssl_expired_alerted=False), []
    config = policy.config
    if not (config.enabled and config.alert_on_ssl_expiration):
        return state, []
    if ssl.expired and state.ssl_expired_alerted:
        return state, []
    details = {"daysUntilExpiry": ssl.days_until_expiry, "validTo": ssl.valid_to}
    kind: AlertKind = "ssl_expired" if ssl.expired else "ssl_expiring"
    why = _certificate_reason(ssl)
    if reason is not None:
        if not _older_than(state.ssl_suppressed_at, now, SSL_WARNING_EVERY):
            return state, []
        return replace(state, ssl_suppressed_at=now.isoformat()), [
            AlertAction(kind, suppressed_reason=reason, details=details, reason=why)
        ]
    if ssl.expired:
        return replace(state, ssl_expired_alerted=True), [AlertAction(kind, details=details, reason=why)]
    if not _older_than(state.ssl_warned_at, now, SSL_WARNING_EVERY):
        return state, []
    return replace(state, ssl_warned_at=now.isoformat()), [AlertAction(kind, details=details, reason=why)]


def _certificate_reason(ssl: SslFacts) -> str:
    if ssl.expired:
        return "the certificate has expired"
    days = ssl.days_until_expiry
    return "the certificate expires soon" if days is None else f"the certificate expires in {days} day(s)"


def _older_than(iso_time: str | None, now: datetime, age: timedelta) -> bool:
    if iso_time is None:
        return True
    try:
        return now - datetime.fromisoformat(iso_time) >= age
    except (TypeError, ValueError):
        return True
