"""Pure deadline rules: whether a monitor's check can report inside the run's deadline, which schedule caps at
the monitor's frequency (so runs of one monitor never overlap). Used by the API's monitor validation
(shared/api/requests.py); schedule's SQL computes the same deadline (shared/pipeline/schedule.py)."""

from __future__ import annotations


def run_deadline_seconds(budget_seconds: float, grace_seconds: float, frequency_minutes: int) -> float:
    """A run's deadline after its slot: its check's budget plus the grace, but never past the next slot."""
    return min(budget_seconds + grace_seconds, frequency_minutes * 60)


def timeout_problem(budget_seconds: float, grace_seconds: float, frequency_minutes: int) -> str | None:
    """Why a config's timeout cannot finish inside its frequency, or None.

    The deadline is capped at the frequency: a check that may run longer than the frequency less the grace would
    be finalized `unknown` before its timeout result arrives, and `unknown` never alerts, so the outage would hide.
    """
    if budget_seconds + grace_seconds <= frequency_minutes * 60:
        return None
    room = frequency_minutes * 60 - grace_seconds
    return (
        f"a check may take {budget_seconds:g}s, but a run every {frequency_minutes} minute(s) leaves "
        f"{room:g}s for it ({grace_seconds:g}s of the {frequency_minutes * 60}s go to reporting the result); "
        f"lower timeoutSeconds (or retry) or raise frequencyMinutes"
    )
