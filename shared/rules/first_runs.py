"""Pure rule: when each monitor of one creation batch first runs. Used by the API's batch create
(shared/api/services/monitors.py create_monitors).

A monitor's first slot sets the phase of every later one (schedule moves next_run_at one frequency at a time),
so a batch whose first runs all fell on one instant would stay bunched for ever: 20,000 one-minute monitors
due in the same second of every minute, where the pipeline is sized for their average rate. The first runs of
a batch are therefore spread evenly over a window: as short as the added rate allows (a small batch still runs
at once), never longer than the monitor's frequency (the phase a monitor would have had anyway)."""

from __future__ import annotations

# First runs a batch adds per second while it spreads: at three locations, 300 checks/s on top of what runs,
# well inside what one region sustains (bench/README.md, "Sustained pipeline").
FIRST_RUNS_PER_SECOND = 100.0


def first_run_offsets(
    frequencies_minutes: list[int], per_second: float = FIRST_RUNS_PER_SECOND
) -> list[float]:
    """Seconds after creation of each monitor's first run, in the batch's order.

    Monitors of one frequency are spread over min(frequency, their count / per_second): the first of them runs
    at once, the others at even steps after it, each group in the batch's order.
    """
    counts: dict[int, int] = {}
    for minutes in frequencies_minutes:
        counts[minutes] = counts.get(minutes, 0) + 1
    seen: dict[int, int] = {}
    offsets = []
    for minutes in frequencies_minutes:
        position = seen.get(minutes, 0)
        seen[minutes] = position + 1
        window = min(minutes * 60.0, counts[minutes] / per_second)
        offsets.append(window * position / counts[minutes])
    return offsets
