"""Pure rules behind alertConfig's triggers and flap detection: what a monitor's recent runs remember, which
trigger they meet, Nagios' weighted state-change percent, and the words an alert gives for why it fired.
Used by shared/rules/alerts.py (decide), so live alerting and the backtest read the same rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from shared.models import FAILED_STATUSES, AlertConfig, FailuresInWindow, FlapDetection

RECENT_RUNS_KEPT = 50  # FlapDetection.window's maximum
WINDOW_FAILURES_KEPT = 20  # FailuresInWindow.failures' maximum
# Nagios' flapping.c: a state change weighs 0.75 at the oldest end of the window and 1.25 at the newest.
OLDEST_CHANGE_WEIGHT, NEWEST_CHANGE_WEIGHT = 0.75, 1.25

RecentRun = tuple[int, int]  # (the run's scheduled time in epoch seconds, 1 if it failed else 0)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def remember_run(recent: Sequence[RecentRun], at: datetime, failed: bool) -> tuple[RecentRun, ...]:
    return (*recent, (epoch(at), int(failed)))[-RECENT_RUNS_KEPT:]


def remember_failure(failures: Sequence[int], at: datetime) -> tuple[int, ...]:
    return (*failures, epoch(at))[-WINDOW_FAILURES_KEPT:]


def weighted_change_percent(failed: Sequence[int | bool], window: int) -> float:
    """Nagios' curved percent state change over the last `window` runs. A history shorter than the window is
    padded with its oldest state, as Nagios fills a fresh history with the current state: no changes there."""
    history = [bool(flag) for flag in failed[-window:]]
    if not history or window < 3:
        return 0.0
    padded = [history[0]] * (window - len(history)) + history
    step = (NEWEST_CHANGE_WEIGHT - OLDEST_CHANGE_WEIGHT) / (window - 2)
    weighted = sum(
        OLDEST_CHANGE_WEIGHT + (position - 1) * step
        for position in range(1, window)
        if padded[position] != padded[position - 1]
    )
    return weighted * 100 / (window - 1)


def flapping_after(is_flapping: bool, percent: float, detection: FlapDetection) -> bool:
    """Hysteresis: starts at or above the high threshold, stops at or below the low one, else stays."""
    if not is_flapping and percent >= detection.high_threshold:
        return True
    if is_flapping and percent <= detection.low_threshold:
        return False
    return is_flapping


def flapping_reason(started: bool, percent: float, detection: FlapDetection) -> str:
    bound = (
        f"at or above {detection.high_threshold:g}%"
        if started
        else f"at or below {detection.low_threshold:g}%"
    )
    return (
        f"flapping {'started' if started else 'stopped'}: the state changed in {percent:.1f}% of the last "
        f"{detection.window} runs (weighted), {bound}"
    )


def threshold_reason(consecutive_failures: int, threshold: int | None) -> str | None:
    if threshold is None or consecutive_failures < threshold:
        return None
    return f"{consecutive_failures} consecutive run{'s' if consecutive_failures != 1 else ''} failed"


def window_reason(
    failures: Sequence[int], recent: Sequence[RecentRun], rule: FailuresInWindow | None, at: datetime
) -> str | None:
    """'3 of the last 5 runs failed within 60 min' once `rule.failures` failed runs fall within the window."""
    if rule is None or len(failures) < rule.failures:
        return None
    counted = failures[-rule.failures :]
    if epoch(at) - counted[0] > rule.within_minutes * 60:
        return None
    if recent and recent[0][0] <= counted[0]:
        runs = sum(1 for when, _ in recent if when >= counted[0])
        return f"{rule.failures} of the last {runs} runs failed within {rule.within_minutes} min"
    return f"{rule.failures} runs failed within {rule.within_minutes} min"


def failing_for_reason(failing_since: str | None, minutes: int | None, at: datetime) -> str | None:
    if minutes is None or failing_since is None:
        return None
    since = datetime.fromisoformat(failing_since)
    if at - since < timedelta(minutes=minutes):
        return None
    failing = int((at - since).total_seconds() // 60)
    return f"failing for {failing} min (since {since.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC)"


def trigger_reason(
    config: AlertConfig,
    consecutive_failures: int,
    window_failures: Sequence[int],
    recent: Sequence[RecentRun],
    failing_since: str | None,
    at: datetime,
) -> str | None:
    """The first trigger the monitor's runs meet, in words; None: none is met (yet)."""
    return (
        threshold_reason(consecutive_failures, config.failure_threshold)
        or window_reason(window_failures, recent, config.failures_in_window, at)
        or failing_for_reason(failing_since, config.failing_for_minutes, at)
    )


def run_facts(locations_down: Sequence[str], locations_total: int, last_error: str | None) -> str:
    """'2 of 3 locations down: eu-central, us-east; last error: TLS handshake timeout'."""
    parts = []
    if locations_total:
        down = sorted(locations_down)
        parts.append(
            f"{len(down)} of {locations_total} locations down" + (f": {', '.join(down)}" if down else "")
        )
    if last_error:
        parts.append(f"last error: {last_error}")
    return "; ".join(parts)


def full_reason(rule_reason: str, facts: str) -> str:
    return "; ".join(part for part in (rule_reason, facts) if part)


def alert_reason(
    kind: str, rule_reason: str, failing: Sequence[str], total: int, last_error: str | None
) -> str:
    """What an alert says for why it fired: the rule's words, and for a down alert the run's facts."""
    if kind != "failure":
        return rule_reason
    return full_reason(rule_reason, run_facts(failing, total, last_error))


def failing_locations(locations: Sequence[str], statuses: Sequence[str]) -> list[str]:
    return sorted(loc for loc, status in zip(locations, statuses, strict=True) if status in FAILED_STATUSES)
