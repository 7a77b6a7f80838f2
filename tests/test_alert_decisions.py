"""Table tests for the pure alert decision: which alerts each sequence of runs sends, suppresses, or skips."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.models import AlertConfig
from shared.rules.alerts import (
    LIMIT_REACHED,
    AlertPolicy,
    AlertState,
    MaintenanceWindow,
    RunOutcome,
    SslFacts,
    decide,
    reminder_interval,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
STEP = timedelta(minutes=1)
CODES = {"U": "up", "D": "down", "G": "degraded", "?": "unknown", "E": "error", "T": "timeout"}


def policy(windows=(), **config) -> AlertPolicy:
    return AlertPolicy(AlertConfig(enabled=True, **config), tuple(windows))


def replay(sequence: str, rules: AlertPolicy, start: datetime = START, step: timedelta = STEP):
    """Runs one status per character through decide(); returns (run number from 1, kind, sequence, reason)."""
    state = AlertState()
    fired = []
    for index, code in enumerate(sequence.replace(" ", "").replace(",", "")):
        decision = decide(state, RunOutcome(CODES[code]), rules, start + index * step)
        state = decision.state
        fired += [(index + 1, a.kind, a.sequence_number, a.suppressed_reason) for a in decision.actions]
    return fired, state


def sent(fired) -> list[tuple[int, str]]:
    return [(run, kind) for run, kind, _, reason in fired if reason is None]


@pytest.mark.parametrize(
    ("case", "sequence", "config", "expected"),
    [
        (
            "up then down x16 with threshold 1: first alert at once, reminders every 5 failed runs, then silence",
            "U" + "D" * 16,
            {"failure_threshold": 1},
            [(2, "failure"), (7, "failure"), (12, "failure")],
        ),
        (
            "F,F,F,F,P,P with failure threshold 3 and recovery threshold 2",
            "DDDDUU",
            {"failure_threshold": 3, "recovery_threshold": 2},
            [(3, "failure"), (6, "recovery")],
        ),
        (
            "a flap that stays below the failure threshold sends nothing",
            "UDDUDDUDDUU",
            {"failure_threshold": 3},
            [],
        ),
        (
            "a new monitor that starts down alerts on its first run and recovers",
            "DDU",
            {"failure_threshold": 1},
            [(1, "failure"), (3, "recovery")],
        ),
        (
            "a new monitor that starts down waits for the threshold",
            "DDDDU",
            {"failure_threshold": 3},
            [(3, "failure"), (5, "recovery")],
        ),
        (
            "a blip below the recovery threshold neither recovers nor restarts the sequence",
            "DDUDDUU",
            {"failure_threshold": 1, "recovery_threshold": 2},
            [(1, "failure"), (7, "recovery")],
        ),
        (
            "recovery threshold above 1 fires (the reference design never did)",
            "DUUUU",
            {"recovery_threshold": 4},
            [(1, "failure"), (5, "recovery")],
        ),
        (
            "degraded runs are not failures: they end a failure streak and count towards recovery",
            "DDGDDGG",
            {"failure_threshold": 3, "recovery_threshold": 2},
            [],
        ),
        (
            "degraded runs recover a monitor that alerted",
            "DGG",
            {"recovery_threshold": 2},
            [(1, "failure"), (3, "recovery")],
        ),
        (
            "unknown runs (no location reported) neither break nor extend a streak",
            "DD?D??UU",
            {"failure_threshold": 3, "recovery_threshold": 2},
            [(4, "failure"), (8, "recovery")],
        ),
        ("error and timeout are failures", "ET", {"failure_threshold": 2}, [(2, "failure")]),
        (
            "a configured reminder interval replaces the default",
            "D" * 6,
            {"reminder_interval": 2},
            [(1, "failure"), (3, "failure"), (5, "failure")],
        ),
        (
            "the default reminder interval is 2 x threshold when that exceeds 5",
            "D" * 20,
            {"failure_threshold": 4},
            [(4, "failure"), (12, "failure"), (20, "failure")],
        ),
        (
            "no recovery alert without a failure alert in this sequence",
            "DDUU" + "DU",
            {"failure_threshold": 3, "recovery_threshold": 1},
            [],
        ),
        (
            "each incident gets its own 3 alerts",
            "DDDDDU" + "DDDDDU",
            {"reminder_interval": 1},
            [(1, "failure"), (2, "failure"), (3, "failure"), (6, "recovery")]
            + [(7, "failure"), (8, "failure"), (9, "failure"), (12, "recovery")],
        ),
        ("alertOnFailure off: nothing, so no recovery either", "DDUU", {"alert_on_failure": False}, []),
        (
            "alertOnRecovery off: the failure alert only",
            "DDUU",
            {"alert_on_recovery": False},
            [(1, "failure")],
        ),
    ],
)
def test_sequence_sends_exactly_these_alerts(case, sequence, config, expected):
    fired, _ = replay(sequence, policy(**config))
    assert sent(fired) == expected, case


def test_a_disabled_policy_sends_nothing_but_still_counts():
    fired, state = replay("DDDD", AlertPolicy(AlertConfig(enabled=False)))
    assert fired == []
    assert state.consecutive_failures == 4 and state.failure_alerts_sent == 0


def test_the_fourth_failure_alert_is_recorded_once_as_suppressed_by_the_limit():
    fired, state = replay("U" + "D" * 30, policy(failure_threshold=1))
    suppressed = [(run, seq, reason) for run, kind, seq, reason in fired if reason]
    assert suppressed == [(17, 4, LIMIT_REACHED)]
    assert state.failure_alerts_sent == 3


def test_reminders_count_failed_runs_and_carry_their_sequence_number():
    fired, _ = replay("DDDDDDDDDDD", policy())
    assert [(run, seq) for run, _, seq, _ in fired if _ is None] == [(1, 1), (6, 2), (11, 3)]


def test_the_default_reminder_interval_is_at_least_5():
    assert [reminder_interval(AlertConfig(failure_threshold=t)) for t in (1, 2, 3, 5, 10)] == [
        5,
        5,
        6,
        10,
        20,
    ]


# --- maintenance windows and mute-until ---------------------------------------------------------------


def one_off(minutes_from: int, minutes_to: int, name="deploy") -> MaintenanceWindow:
    return MaintenanceWindow(name, START + minutes_from * STEP, START + minutes_to * STEP)


def test_a_failure_during_maintenance_is_suppressed_with_the_reason_and_alerts_once_the_window_ends():
    # Runs 1..12 fall inside the window [0, 12); the monitor is still down at run 13.
    fired, _ = replay("D" * 14 + "U", policy(windows=[one_off(0, 12)]))
    assert fired == [
        (1, "failure", 1, "maintenance window 'deploy'"),
        (6, "failure", 2, "maintenance window 'deploy'"),
        (11, "failure", 3, "maintenance window 'deploy'"),
        (13, "failure", 1, None),
        (15, "recovery", 1, None),
    ]


def test_a_failure_that_ends_inside_maintenance_notifies_nobody():
    fired, state = replay("UDDDUU", policy(windows=[one_off(0, 60)]))
    assert sent(fired) == []
    assert [(run, reason) for run, _, _, reason in fired] == [(2, "maintenance window 'deploy'")]
    # the run history outlives incidents (triggers and flapping read it); the incident's counters are reset
    assert replace(state, recent_runs=(), window_failures=()) == AlertState(consecutive_successes=2)


def test_a_recovery_inside_maintenance_is_suppressed():
    fired, _ = replay("DDU", policy(windows=[one_off(2, 10)]))
    assert fired == [(1, "failure", 1, None), (3, "recovery", 1, "maintenance window 'deploy'")]


def test_reminders_resume_after_maintenance_and_never_exceed_three_sent():
    fired, _ = replay("D" * 30, policy(windows=[one_off(3, 9)]))
    assert sent(fired) == [(1, "failure"), (11, "failure"), (16, "failure")]
    assert [run for run, _, _, reason in fired if reason and "maintenance" in reason] == [6]


def test_mute_until_suppresses_until_that_instant():
    rules = policy(muted_until=START + 2 * STEP)  # runs 1 and 2 are before it
    fired, _ = replay("DDDU", rules)
    assert fired == [
        (1, "failure", 1, f"muted until {(START + 2 * STEP).isoformat()}"),
        (3, "failure", 1, None),
        (4, "recovery", 1, None),
    ]


@pytest.mark.parametrize(
    ("window", "at", "active"),
    [
        (MaintenanceWindow("w", cron="0 2 * * 0", duration_minutes=60), "2026-03-08T02:00:00+00:00", True),
        (MaintenanceWindow("w", cron="0 2 * * 0", duration_minutes=60), "2026-03-08T02:59:59+00:00", True),
        (MaintenanceWindow("w", cron="0 2 * * 0", duration_minutes=60), "2026-03-08T03:00:00+00:00", False),
        (MaintenanceWindow("w", cron="0 2 * * 0", duration_minutes=60), "2026-03-08T01:59:59+00:00", False),
        (MaintenanceWindow("w", cron="0 2 * * 0", duration_minutes=60), "2026-03-09T02:30:00+00:00", False),
        # 02:00 in Berlin is 01:00 UTC in winter
        (
            MaintenanceWindow("w", cron="0 2 * * *", duration_minutes=30, timezone="Europe/Berlin"),
            "2026-03-02T01:10:00+00:00",
            True,
        ),
        (
            MaintenanceWindow("w", cron="0 2 * * *", duration_minutes=30, timezone="Europe/Berlin"),
            "2026-03-02T02:10:00+00:00",
            False,
        ),
        # a window spanning midnight
        (MaintenanceWindow("w", cron="30 23 * * *", duration_minutes=60), "2026-03-03T00:15:00+00:00", True),
        (one_off(0, 5), (START + 5 * STEP).isoformat(), False),
        (one_off(0, 5), START.isoformat(), True),
        (MaintenanceWindow("w", cron="not cron", duration_minutes=5), START.isoformat(), False),
        (
            MaintenanceWindow("w", cron="* * * * *", duration_minutes=5, timezone="Nowhere/Else"),
            START.isoformat(),
            False,
        ),
    ],
)
def test_maintenance_window_activity(window, at, active):
    assert window.active_at(datetime.fromisoformat(at)) is active


# --- SSL expiry --------------------------------------------------------------------------------------


def ssl_replay(days_per_run: list[int | None], every: timedelta, windows=(), **config):
    rules = AlertPolicy(AlertConfig(enabled=True, alert_on_ssl_expiration=True, **config), tuple(windows))
    state, fired = AlertState(), []
    for index, days in enumerate(days_per_run):
        facts = None if days is None else SslFacts(days, days <= 0)
        status = "down" if facts and facts.expired else "up"
        decision = decide(state, RunOutcome(status, facts), rules, START + index * every)
        state = decision.state
        fired += [(index + 1, a.kind, a.suppressed_reason) for a in decision.actions]
    return fired, state


def test_an_expiring_certificate_alerts_at_most_once_per_24_hours():
    # hourly runs for two days, 10 days left
    fired, _ = ssl_replay([10] * 49, timedelta(hours=1))
    assert fired == [(1, "ssl_expiring", None), (25, "ssl_expiring", None), (49, "ssl_expiring", None)]


def test_an_expired_certificate_alerts_once_and_also_counts_as_down():
    fired, _ = ssl_replay([1, 0, 0, 0, -1], timedelta(hours=6))
    assert fired == [(1, "ssl_expiring", None), (2, "failure", None), (2, "ssl_expired", None)]


def test_a_certificate_outside_the_window_sends_nothing_and_a_renewal_resets_the_state():
    fired, state = ssl_replay([90, 20, 20, 90, 20], timedelta(hours=1))
    assert fired == [(2, "ssl_expiring", None), (5, "ssl_expiring", None)]
    assert state.ssl_warned_at is not None


def test_runs_without_certificate_facts_keep_the_ssl_state():
    fired, _ = ssl_replay([10, None, None, 10], timedelta(hours=12))
    assert fired == [(1, "ssl_expiring", None), (4, "ssl_expiring", None)]


def test_the_warning_window_comes_from_the_monitor():
    rules = AlertPolicy(AlertConfig(enabled=True, alert_on_ssl_expiration=True), ssl_warning_days=7)
    quiet = decide(AlertState(), RunOutcome("up", SslFacts(10, False)), rules, START)
    loud = decide(AlertState(), RunOutcome("up", SslFacts(7, False)), rules, START)
    assert quiet.actions == [] and [a.kind for a in loud.actions] == ["ssl_expiring"]


def test_ssl_alerts_need_alert_on_ssl_expiration():
    rules = AlertPolicy(AlertConfig(enabled=True))
    assert decide(AlertState(), RunOutcome("up", SslFacts(3, False)), rules, START).actions == []


def test_an_ssl_warning_during_maintenance_is_suppressed_once_a_day_and_sent_after_it():
    window = MaintenanceWindow("night", START, START + timedelta(hours=3))
    fired, _ = ssl_replay([10] * 5, timedelta(hours=1), windows=[window])
    assert fired == [(1, "ssl_expiring", "maintenance window 'night'"), (4, "ssl_expiring", None)]


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ([], None),
        ([None, "x", {}], None),
        ([{"daysUntilExpiry": 12, "expired": False}], SslFacts(12, False)),
        (
            [{"daysUntilExpiry": 12}, {"daysUntilExpiry": 4, "validTo": "2026-03-06"}],
            SslFacts(4, False, "2026-03-06"),
        ),
        ([{"daysUntilExpiry": 40}, {"expired": True}], SslFacts(None, True)),
        ([{"daysUntilExpiry": 0}], SslFacts(0, True)),
        ([{"daysUntilExpiry": "soon"}], None),
        ([{"daysUntilExpiry": True}], None),
        ([{"checked": False, "lastCheckedAt": "2026-03-01T00:00:00Z"}], None),
        (
            [
                {
                    "checked": True,
                    "daysUntilExpiry": 9,
                    "validTo": "2026-03-11T00:00:00+00:00",
                    "expiringSoon": True,
                }
            ],
            SslFacts(9, False, "2026-03-11T00:00:00+00:00", True),
        ),
    ],
)
def test_ssl_facts_are_read_defensively_and_the_worst_location_wins(details, expected):
    assert SslFacts.worst_of(details) == expected


def test_state_round_trips_through_json_and_ignores_unknown_keys():
    state = AlertState(consecutive_failures=2, failure_alerts_sent=1, ssl_warned_at=START.isoformat())
    assert AlertState.from_json({**state.to_json(), "retired_field": 1}) == state
    assert AlertState.from_json(None) == AlertState()
