"""How long a job of a check batch may run: the batch answers before the watchdog's exec_timeout kills it."""

from __future__ import annotations


def time_to_give(needed: float, time_left: float, window: float) -> float | None:
    """Pure: the hard timeout a job gets if it starts now, or None to leave it for the next delivery.

    needed: the time its check is allowed (budget and slack, plus any wait for its slot); time_left: until the
    batch must answer; window: the whole time a batch has. A job that fits gets all it needs. One that needs
    more than any batch has (a config stored before the limits, which then fails validation at once) gets what
    is left: deferring it would defer it forever.
    """
    if needed <= time_left:
        return needed
    if needed > window and time_left > 0:
        return time_left
    return None
