"""The connector's health verdict from the state of its loops (openfaas/connector/liveness.py reports them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LoopCondition = Literal["starting", "running", "redis-unavailable", "crashed", "stopped"]
Verdict = Literal["ok", "degraded", "failing"]


@dataclass(frozen=True)
class LoopView:
    name: str
    condition: LoopCondition


def judge_health(loops: list[LoopView]) -> tuple[int, Verdict]:
    """Pure: the HTTP status and verdict of /health.

    A loop that crashed (until it completes an iteration again), stopped, or never started is failing: 503, so
    an orchestrator restarts the process if supervision cannot bring it back. A loop that cannot reach Redis is
    degraded but answered 200: restarting the connector would not bring Redis back.
    """
    conditions = {loop.condition for loop in loops}
    if not loops or conditions & {"crashed", "stopped", "starting"}:
        return 503, "failing"
    if "redis-unavailable" in conditions:
        return 200, "degraded"
    return 200, "ok"
