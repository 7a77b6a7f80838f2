"""Pure heartbeat decisions: when a heartbeat is next due, when it is overdue (its alarm), and what a ping means.
Used where aggregate writes pings (shared/heartbeats/record.py) and by its sweep (shared/heartbeats/sweep.py).

A heartbeat's job pings in. It is due one period (or the next cron slot) after its last completion (a success
or a failure; before the first one, after its creation), and overdue when that time plus grace passes. A /start
that is not ended within grace makes it overdue too. Each overdue moment is one missed due time: the sweep
writes a down run on it, then the alarm moves to the next due time, so a job that stays silent is down once per
missed slot, as a check monitor is down once per failed run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter

PingKind = Literal["success", "fail", "start", "log"]
AlarmReason = Literal["missed", "unfinished"]


@dataclass(frozen=True)
class HeartbeatSchedule:
    """A heartbeat's expectation: every period_seconds, or at each slot of a 5-field cron in a time zone."""

    grace_seconds: int
    period_seconds: int | None = None
    cron: str | None = None
    timezone: str = "UTC"

    @classmethod
    def from_config(cls, config: dict) -> HeartbeatSchedule:
        """A stored (camelCase, validated on save) heartbeat config."""
        return cls(
            grace_seconds=int(config.get("graceSeconds", 0)),
            period_seconds=config.get("periodSeconds"),
            cron=config.get("cron"),
            timezone=config.get("timezone") or "UTC",
        )

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.grace_seconds)


def next_due(schedule: HeartbeatSchedule, after: datetime) -> datetime:
    """When the next completion is expected after `after`: a period later, or the first cron slot strictly after
    it. Cron slots are wall-clock times in the schedule's zone, so across a DST change a daily 02:30 stays at
    02:30 local (a slot the change skips moves to the first instant that exists)."""
    if schedule.cron is None:
        return after + timedelta(seconds=schedule.period_seconds or 0)
    local = after.astimezone(ZoneInfo(schedule.timezone))
    return croniter(schedule.cron, local).get_next(datetime).astimezone(UTC)


@dataclass(frozen=True)
class Alarm:
    """When a heartbeat becomes overdue (at) and the moment it stands for (due: the missed due time, or the
    unfinished start), which names the down run (runs are unique on (monitor_id, scheduled_at))."""

    at: datetime
    due: datetime
    reason: AlarmReason


def alarm(schedule: HeartbeatSchedule, reference: datetime, open_start_at: datetime | None = None) -> Alarm:
    """The next alarm of a heartbeat whose last completion (or creation, or last missed due time) is `reference`
    and whose last /start, if not yet ended, is open_start_at: the earlier of the due time plus grace and the
    start plus grace."""
    due = next_due(schedule, reference)
    missed = Alarm(due + schedule.grace, due, "missed")
    if open_start_at is None:
        return missed
    unfinished = Alarm(open_start_at + schedule.grace, open_start_at, "unfinished")
    return unfinished if unfinished.at < missed.at else missed


def is_overdue(current: Alarm | None, now: datetime) -> bool:
    return current is not None and current.at <= now


@dataclass(frozen=True)
class OpenStart:
    at: datetime
    rid: str | None


@dataclass(frozen=True)
class PingEffect:
    """What one ping does: the run it writes (its status, None for none) and its duration, whether it closes the
    open start, and whether it is a completion (the new reference for the next due time)."""

    status: Literal["up", "down"] | None
    duration_ms: int | None
    closes_start: bool
    opens_start: bool

    @property
    def completes(self) -> bool:
        return self.status is not None


def ping_effect(
    kind: PingKind, received_at: datetime, rid: str | None, open_start: OpenStart | None
) -> PingEffect:
    """A success or a failure completes the job (a run up or down); its duration runs from the start it ends:
    the open start of the same rid, or, when neither carries a rid, the open start. A start opens one (the
    latest start is the one kept), a log only records its message."""
    if kind == "start":
        return PingEffect(None, None, closes_start=False, opens_start=True)
    if kind == "log":
        return PingEffect(None, None, closes_start=False, opens_start=False)
    ends = open_start is not None and open_start.rid == rid
    duration = round((received_at - open_start.at).total_seconds() * 1000) if ends else None
    status = "up" if kind == "success" else "down"
    return PingEffect(status, duration, closes_start=ends or rid is None, opens_start=False)


def kind_of_exit_status(status: int) -> PingKind:
    """A job's exit status (0-255) as a ping: 0 is success, anything else a failure."""
    if not 0 <= status <= 255:
        raise ValueError("an exit status is 0-255")
    return "success" if status == 0 else "fail"


def overdue_message(current: Alarm, schedule: HeartbeatSchedule) -> str:
    """The down run's message: what was expected and did not come."""
    grace = _duration(schedule.grace_seconds)
    if current.reason == "unfinished":
        return f"Started at {_clock(current.due)} and not ended within the {grace} grace period"
    every = (
        f"cron '{schedule.cron}' ({schedule.timezone})"
        if schedule.cron
        else _duration(schedule.period_seconds)
    )
    return f"No ping by {_clock(current.due)} (expected every {every}, {grace} grace)"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: int | None) -> str:
    seconds = seconds or 0
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
