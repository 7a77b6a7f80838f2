"""Heartbeat decisions as tables: due times (periods, cron in a time zone across DST changes), alarms, overdue
verdicts and what each ping does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.heartbeats.config import HeartbeatConfig
from shared.rules.heartbeats import (
    Alarm,
    HeartbeatSchedule,
    OpenStart,
    alarm,
    is_overdue,
    kind_of_exit_status,
    next_due,
    overdue_message,
    ping_effect,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


HOURLY = HeartbeatSchedule(grace_seconds=300, period_seconds=3600)
DAILY_0230_BERLIN = HeartbeatSchedule(grace_seconds=600, cron="30 2 * * *", timezone="Europe/Berlin")
DAILY_0100_BERLIN = HeartbeatSchedule(grace_seconds=600, cron="0 1 * * *", timezone="Europe/Berlin")
HOURLY_CRON_NY = HeartbeatSchedule(grace_seconds=0, cron="0 * * * *", timezone="America/New_York")


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        (HOURLY, utc(2026, 3, 1, 12, 0), utc(2026, 3, 1, 13, 0)),
        (HOURLY, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)),  # periods ignore DST: elapsed time
        # Berlin, winter (UTC+1): 02:30 local is 01:30 UTC
        (DAILY_0230_BERLIN, berlin(2026, 3, 1, 3, 0), berlin(2026, 3, 2, 2, 30)),
        (DAILY_0100_BERLIN, berlin(2026, 3, 28, 2, 0), berlin(2026, 3, 29, 1, 0)),
        # the night of 29 March 2026 skips 02:00-03:00 in Berlin: the day after it, 02:30 is UTC+2 again
        (DAILY_0100_BERLIN, berlin(2026, 3, 29, 1, 30), berlin(2026, 3, 30, 1, 0)),
        (DAILY_0230_BERLIN, berlin(2026, 3, 30, 3, 0), berlin(2026, 3, 31, 2, 30)),
        # the night of 25 October 2026 repeats 02:00-03:00: a daily 01:00 stays at 01:00 local either side
        (DAILY_0100_BERLIN, berlin(2026, 10, 24, 12, 0), berlin(2026, 10, 25, 1, 0)),
        (DAILY_0100_BERLIN, berlin(2026, 10, 25, 12, 0), berlin(2026, 10, 26, 1, 0)),
        # hourly cron in New York across the spring-forward hour: the slots are an hour apart in UTC
        (HOURLY_CRON_NY, utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 0)),
        (HOURLY_CRON_NY, utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)),
    ],
)
def test_next_due_follows_the_period_or_the_cron_in_its_time_zone(schedule, after, expected):
    assert next_due(schedule, after) == expected.astimezone(UTC)


def test_a_daily_cron_slot_keeps_its_local_time_across_the_spring_change():
    """02:30 on 28 March is 01:30 UTC (UTC+1); on 30 March it is 00:30 UTC (UTC+2)."""
    before = next_due(DAILY_0230_BERLIN, berlin(2026, 3, 27, 12, 0))
    after = next_due(DAILY_0230_BERLIN, berlin(2026, 3, 29, 12, 0))
    assert (before, after) == (utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 0, 30))
    assert after.astimezone(BERLIN).strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(
    ("schedule", "reference", "open_start", "expected"),
    [
        (HOURLY, utc(2026, 1, 1, 12), None, Alarm(utc(2026, 1, 1, 13, 5), utc(2026, 1, 1, 13), "missed")),
        # a start ends within grace, or it is overdue before the next due time
        (
            HOURLY,
            utc(2026, 1, 1, 12),
            utc(2026, 1, 1, 12, 30),
            Alarm(utc(2026, 1, 1, 12, 35), utc(2026, 1, 1, 12, 30), "unfinished"),
        ),
        # a start later than the due alarm does not put it off
        (
            HOURLY,
            utc(2026, 1, 1, 12),
            utc(2026, 1, 1, 13, 4),
            Alarm(utc(2026, 1, 1, 13, 5), utc(2026, 1, 1, 13), "missed"),
        ),
        (
            DAILY_0230_BERLIN,
            berlin(2026, 3, 1, 2, 31),
            None,
            Alarm(berlin(2026, 3, 2, 2, 40), berlin(2026, 3, 2, 2, 30), "missed"),
        ),
    ],
)
def test_the_alarm_is_the_earlier_of_due_plus_grace_and_start_plus_grace(
    schedule, reference, open_start, expected
):
    assert alarm(schedule, reference, open_start) == expected


@pytest.mark.parametrize(
    ("now", "overdue"),
    [
        (utc(2026, 1, 1, 13, 4, 59), False),
        (utc(2026, 1, 1, 13, 5), True),
        (utc(2026, 1, 2), True),
    ],
)
def test_a_heartbeat_is_overdue_once_its_alarm_has_passed(now, overdue):
    assert is_overdue(alarm(HOURLY, utc(2026, 1, 1, 12)), now) is overdue
    assert is_overdue(None, now) is False


AT = utc(2026, 1, 1, 12, 0, 10)
START = OpenStart(utc(2026, 1, 1, 12), "r1")
START_NO_RID = OpenStart(utc(2026, 1, 1, 12), None)


@pytest.mark.parametrize(
    ("kind", "rid", "open_start", "status", "duration", "closes", "opens"),
    [
        ("success", None, None, "up", None, True, False),
        ("fail", None, None, "down", None, True, False),
        ("start", "r1", None, None, None, False, True),
        ("log", None, START, None, None, False, False),
        # the end of the start of the same rid: its duration
        ("success", "r1", START, "up", 10_000, True, False),
        ("fail", "r1", START, "down", 10_000, True, False),
        # neither carries a rid: paired
        ("success", None, START_NO_RID, "up", 10_000, True, False),
        # another rid's end neither times nor closes this start
        ("success", "r2", START, "up", None, False, False),
        # an end without rid closes a start with one, untimed
        ("success", None, START, "up", None, True, False),
    ],
)
def test_what_each_ping_does(kind, rid, open_start, status, duration, closes, opens):
    effect = ping_effect(kind, AT, rid, open_start)
    assert (effect.status, effect.duration_ms, effect.closes_start, effect.opens_start) == (
        status,
        duration,
        closes,
        opens,
    )
    assert effect.completes is (status is not None)


@pytest.mark.parametrize(("exit_status", "kind"), [(0, "success"), (1, "fail"), (255, "fail")])
def test_an_exit_status_is_success_only_when_zero(exit_status, kind):
    assert kind_of_exit_status(exit_status) == kind


@pytest.mark.parametrize("exit_status", [-1, 256])
def test_an_exit_status_outside_0_255_is_refused(exit_status):
    with pytest.raises(ValueError, match="0-255"):
        kind_of_exit_status(exit_status)


def test_the_overdue_message_says_what_was_expected():
    missed = alarm(HOURLY, utc(2026, 1, 1, 12))
    assert (
        overdue_message(missed, HOURLY) == "No ping by 2026-01-01 13:00:00 UTC (expected every 1h, 5m grace)"
    )
    unfinished = alarm(HOURLY, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12, 30))
    assert overdue_message(unfinished, HOURLY) == (
        "Started at 2026-01-01 12:30:00 UTC and not ended within the 5m grace period"
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"periodSeconds": 59}, "periodSeconds"),
        ({"periodSeconds": 365 * 86400 + 1}, "periodSeconds"),
        ({}, "periodSeconds"),
        ({"periodSeconds": 60, "cron": "* * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "0 0 * * * *"}, "cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"periodSeconds": 60, "timezone": "UTC"}, "timezone"),
        ({"periodSeconds": 60, "graceSeconds": -1}, "graceSeconds"),
        ({"periodSeconds": 60, "target": "x"}, "target"),
    ],
)
def test_a_bad_heartbeat_config_is_refused_naming_its_field(config, field):
    with pytest.raises(ValidationError) as raised:
        HeartbeatConfig.model_validate(config)
    assert field in str(raised.value)


def test_a_cron_config_defaults_to_utc_and_a_period_needs_no_zone():
    assert HeartbeatConfig.model_validate({"cron": "30 2 * * *"}).timezone == "UTC"
    parsed = HeartbeatConfig.model_validate({"periodSeconds": 60, "graceSeconds": 0})
    assert parsed.model_dump(by_alias=True, exclude_none=True) == {"periodSeconds": 60, "graceSeconds": 0}
    assert timedelta(seconds=HeartbeatSchedule.from_config({"periodSeconds": 60}).grace_seconds) == timedelta(
        0
    )
