"""The policy backtest's replay (pure): stored runs through decide(), in the order aggregate applied them, with
each alert's reason composed as a live alert's. Used by shared/api/services/backtest.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.rules.alert_triggers import alert_reason
from shared.rules.alerts import AlertPolicy, AlertState, RunOutcome, SslFacts, decide


@dataclass(frozen=True)
class StoredRun:
    """A finalized run as the replay needs it (runs joined with their monitor_results)."""

    id: uuid.UUID
    scheduled_at: datetime
    finalized_at: datetime
    status: str  # the aggregated status it was finalized with
    failing: tuple[str, ...]  # the locations whose check failed
    locations_total: int  # expected locations
    last_error: str | None = None
    ssl: SslFacts | None = None


@dataclass(frozen=True)
class ReplayedAlert:
    run_id: uuid.UUID
    time: datetime  # when it would have been decided: the run's finalization
    kind: str
    reason: str
    suppressed_reason: str | None = None


def applied_in_order(runs: Iterable[StoredRun]) -> list[StoredRun]:
    """The runs aggregate applied, as it applied them: by finalization, a run scheduled before one already
    applied (a late run) stored but skipped (Invariant 4: state only moves forward)."""
    applied: list[StoredRun] = []
    for run in sorted(runs, key=lambda r: (r.finalized_at, r.scheduled_at, str(r.id))):
        if applied and run.scheduled_at <= applied[-1].scheduled_at:
            continue
        applied.append(run)
    return applied


def replay(
    runs: Iterable[StoredRun], policy: AlertPolicy, state: AlertState | None = None
) -> tuple[list[ReplayedAlert], AlertState]:
    """Every alert `policy` decides over `runs` (from `state`, a fresh monitor's by default), and the end state."""
    state = state or AlertState()
    alerts: list[ReplayedAlert] = []
    for run in applied_in_order(runs):
        outcome = RunOutcome(run.status, run.ssl, scheduled_at=run.scheduled_at)
        decision = decide(state, outcome, policy, run.finalized_at)
        state = decision.state
        alerts += [
            ReplayedAlert(
                run.id,
                run.finalized_at,
                action.kind,
                alert_reason(action.kind, action.reason, run.failing, run.locations_total, run.last_error),
                action.suppressed_reason,
            )
            for action in decision.actions
        ]
    return alerts, state
