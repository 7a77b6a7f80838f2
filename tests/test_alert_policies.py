"""Table tests for the alert policy rules: failuresInWindow, failingForMinutes, failureThreshold (first met
raises), Nagios-weighted flap detection with hysteresis, and the reason every alert carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from pydantic import ValidationError

from shared.models import AlertConfig, AlertKind, FlapDetection
from shared.notify import PROVIDERS
from shared.notify.message import build_message
from shared.notify.webhook import webhook_body
from shared.rules.alert_triggers import (
    flapping_after,
    run_facts,
    weighted_change_percent,
    window_reason,
)
from shared.rules.alerts import AlertPolicy, AlertState, RunOutcome, decide

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CODES = {"U": "up", "D": "down", "G": "degraded", "?": "unknown"}


def policy(**config) -> AlertPolicy:
    return AlertPolicy(AlertConfig.model_validate({"enabled": True, **config}))


def replay(sequence: str, rules: AlertPolicy, step: timedelta = timedelta(minutes=5)):
    """One status per character, `step` apart; returns [(run number from 1, kind, reason)] of unsuppressed alerts."""
    state, fired = AlertState(), []
    for index, code in enumerate(sequence.replace(",", "")):
        at = START + index * step
        decision = decide(state, RunOutcome(CODES[code], scheduled_at=at), rules, at)
        state = decision.state
        fired += [(index + 1, a.kind, a.reason) for a in decision.actions if a.suppressed_reason is None]
    return fired, state


def kinds(fired) -> list[tuple[int, str]]:
    return [(run, kind) for run, kind, _ in fired]


@pytest.mark.parametrize(
    ("case", "sequence", "config", "step_minutes", "expected"),
    [
        (
            "3 failures within 60 min, passes between: the third raises, once",
            "D,U,D,U,D",
            {"failuresInWindow": {"failures": 3, "withinMinutes": 60}},
            5,
            [(5, "failure")],
        ),
        (
            "... then a pass recovers as today",
            "D,U,D,U,D,U",
            {"failuresInWindow": {"failures": 3, "withinMinutes": 60}},
            5,
            [(5, "failure"), (6, "recovery")],
        ),
        (
            "failures spread wider than the window never raise",
            "D,U,U,U,D,U,U,U,D,U,U,U,D",
            {"failuresInWindow": {"failures": 3, "withinMinutes": 60}},
            10,
            [],
        ),
        (
            "the failures an alert counted do not raise the next incident: it needs 3 fresh ones",
            "D,D,D,U,D,D,D",
            {"failuresInWindow": {"failures": 3, "withinMinutes": 60}},
            1,
            [(3, "failure"), (4, "recovery"), (7, "failure")],
        ),
        (
            "failingForMinutes: 15 min of failed runs 5 min apart raise at the 4th run",
            "U,D,D,D,D,D",
            {"failingForMinutes": 15},
            5,
            [(5, "failure")],
        ),
        (
            "failingForMinutes: a pass restarts the clock",
            "D,D,D,U,D,D,D,D",
            {"failingForMinutes": 15},
            5,
            [(8, "failure")],
        ),
        (
            "threshold alone (the default) is today's rule",
            "U,D,D,D",
            {"failureThreshold": 2},
            5,
            [(3, "failure")],
        ),
        (
            "several triggers: the first met raises (threshold 3 before 20 failing minutes)",
            "D,D,D,D,D,D",
            {"failureThreshold": 3, "failingForMinutes": 20},
            5,
            [(3, "failure")],
        ),
        (
            "several triggers: the first met raises (failing for 10 min before 5 consecutive)",
            "D,D,D,D,D,D",
            {"failureThreshold": 5, "failingForMinutes": 10},
            5,
            [(3, "failure")],
        ),
        (
            "several triggers: the window is met before the threshold, passes between",
            "D,U,D,U,D",
            {"failureThreshold": 3, "failuresInWindow": {"failures": 3, "withinMinutes": 30}},
            5,
            [(5, "failure")],
        ),
        (
            "reminders and the 3-alert limit work as today after a window trigger",
            "DDD" + "D" * 12,
            {"failuresInWindow": {"failures": 3, "withinMinutes": 60}, "reminderInterval": 2},
            1,
            [(3, "failure"), (5, "failure"), (7, "failure")],
        ),
        (
            "unknown runs change nothing: not a failure, not a pass",
            "D,?,D,?,D",
            {"failuresInWindow": {"failures": 3, "withinMinutes": 60}},
            5,
            [(5, "failure")],
        ),
    ],
)
def test_triggers(case, sequence, config, step_minutes, expected):
    fired, _ = replay(sequence, policy(**config), timedelta(minutes=step_minutes))
    assert kinds(fired) == expected, case


@pytest.mark.parametrize(
    ("config", "sequence", "reason"),
    [
        (
            {"failuresInWindow": {"failures": 3, "withinMinutes": 20}},
            "D,U,D,D",
            "3 of the last 4 runs failed within 20 min",
        ),
        ({"failureThreshold": 2}, "U,D,D", "2 consecutive runs failed"),
        ({"failureThreshold": 1}, "D", "1 consecutive run failed"),
        ({"failingForMinutes": 10}, "D,D,D", "failing for 10 min (since 2026-03-02 09:00 UTC)"),
    ],
)
def test_each_trigger_says_why_it_fired(config, sequence, reason):
    fired, _ = replay(sequence, policy(**config))
    assert fired[-1][1:] == ("failure", reason)


def test_a_recovery_and_a_reminder_say_why_too():
    fired, _ = replay("D" * 6 + "UU", policy(reminderInterval=5, recoveryThreshold=2))
    assert [reason for _, _, reason in fired] == [
        "1 consecutive run failed",
        "still failing: reminder 1 of 2",
        "2 consecutive runs passed",
    ]


def test_the_run_facts_name_the_locations_down_and_the_last_error():
    assert (
        run_facts(["us-east", "eu-central"], 3, "TLS handshake timeout")
        == "2 of 3 locations down: eu-central, us-east; last error: TLS handshake timeout"
    )
    assert run_facts([], 3, None) == "0 of 3 locations down"


def test_the_window_counts_the_runs_since_its_oldest_failure_when_the_history_reaches_it():
    failures = (0, 600)
    assert window_reason(failures, (), AlertConfig().failures_in_window, START) is None
    rule = AlertConfig(failuresInWindow={"failures": 2, "withinMinutes": 10}).failures_in_window
    at = datetime.fromtimestamp(600, UTC)
    assert window_reason(failures, ((0, 1), (300, 0), (600, 1)), rule, at) == (
        "2 of the last 3 runs failed within 10 min"
    )
    assert window_reason(failures, ((300, 0), (600, 1)), rule, at) == "2 runs failed within 10 min"
    assert window_reason(failures, (), rule, at + timedelta(seconds=1)) is None


def test_a_threshold_beside_another_trigger_applies_only_when_given():
    assert AlertConfig(failingForMinutes=5).failure_threshold is None
    assert AlertConfig(failingForMinutes=5, failureThreshold=1).failure_threshold == 1
    stored = AlertConfig(failingForMinutes=5).model_dump(by_alias=True, mode="json")
    assert AlertConfig.model_validate(stored).failure_threshold is None, "reading it back decides the same"
    assert AlertConfig().failure_threshold == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"failuresInWindow": {"failures": 0, "withinMinutes": 10}}, "failuresInWindow.failures"),
        ({"failuresInWindow": {"failures": 3, "withinMinutes": 1441}}, "failuresInWindow.withinMinutes"),
        ({"failingForMinutes": 0}, "failingForMinutes"),
        ({"flapDetection": {"window": 2}}, "flapDetection.window"),
        ({"flapDetection": {"lowThreshold": 30, "highThreshold": 30}}, "flapDetection"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(body, field):
    with pytest.raises(ValidationError) as raised:
        AlertConfig.model_validate(body)
    assert ".".join(str(part) for part in raised.value.errors()[0]["loc"]) == field


# --- flapping: Nagios' weighted percent state change and its hysteresis ----------------------------------


@pytest.mark.parametrize(
    ("history", "window", "percent"),
    [
        ("U" * 21, 21, 0.0),
        ("UD" * 10 + "U", 21, 100.0),  # every one of the 20 changes: the weights average 1
        ("U" * 20 + "D", 21, 6.25),  # the newest change weighs 1.25 of 20
        ("UD" + "U" * 19, 21, 7.5),  # the oldest two changes weigh 0.75 and ~0.776
        ("UD", 21, 6.25),  # a short history is padded with its oldest state: one change, the newest
        ("UDUDUD", 21, 29.9),
        ("UDUDUDU", 21, 35.5),
    ],
)
def test_the_weighted_change_percent_is_nagios(history, window, percent):
    failed = [code == "D" for code in history]
    if history == "UD" + "U" * 19:
        percent = (0.75 + 0.75 + 0.5 / 19) * 100 / 20
    assert weighted_change_percent(failed, window) == pytest.approx(percent, abs=0.05)


@pytest.mark.parametrize(
    ("flapping", "percent", "after"),
    [
        (False, 29.9, False),
        (False, 30.0, True),
        (True, 25.0, True),  # between the thresholds nothing changes
        (False, 25.0, False),
        (True, 20.0, False),
        (True, 20.1, True),
    ],
)
def test_flapping_has_hysteresis(flapping, percent, after):
    assert flapping_after(flapping, percent, FlapDetection()) is after


def test_alternating_runs_start_flapping_once_and_hold_down_and_recovery_alerts():
    fired, state = replay("DU" * 8, policy(flapDetection={"enabled": True}), timedelta(minutes=1))
    assert kinds(fired) == [
        (1, "failure"),
        (2, "recovery"),
        (3, "failure"),
        (4, "recovery"),
        (5, "failure"),
        (6, "recovery"),
        (7, "flapping_started"),
    ]
    assert fired[-1][2] == (
        "flapping started: the state changed in 35.5% of the last 21 runs (weighted), at or above 30%"
    )
    assert state.is_flapping


def test_flapping_stops_once_below_the_low_threshold_and_the_recovery_held_meanwhile_then_goes_out():
    # recovery threshold 2: the alternating passes are blips, so the first failure alert's incident stays open
    rules = policy(recoveryThreshold=2, flapDetection={"enabled": True})
    fired, state = replay("DU" * 8 + "U" * 30, rules, timedelta(minutes=1))
    stopped = next(run for run, kind in kinds(fired) if kind == "flapping_stopped")
    assert kinds(fired) == [
        (1, "failure"),
        (7, "flapping_started"),
        (stopped, "flapping_stopped"),
        (stopped, "recovery"),  # owed since the runs passed while flapping: it goes out as flapping stops
    ]
    assert not state.is_flapping
    assert "at or below 20%" in next(reason for _, kind, reason in fired if kind == "flapping_stopped")


def test_a_failure_held_while_flapping_alerts_once_flapping_stops_if_still_failing():
    rules = policy(flapDetection={"enabled": True, "window": 5, "highThreshold": 50, "lowThreshold": 10})
    fired, _ = replay("UDUDU" + "DDDDDD", rules, timedelta(minutes=1))
    assert [kind for _, kind in kinds(fired)][-3:] == ["flapping_started", "flapping_stopped", "failure"]


def test_flap_detection_off_holds_nothing_and_says_nothing():
    fired, state = replay("DU" * 8, policy(), timedelta(minutes=1))
    assert len(fired) == 16 and not state.is_flapping


# --- every provider renders every alert kind, and the reason reaches each ---------------------------------


@pytest.mark.parametrize("kind", get_args(AlertKind))
def test_every_provider_renders_every_alert_kind_with_its_reason(kind):
    payload = {
        "monitorName": "Checkout",
        "status": "down",
        "reason": "why it fired",
        "flapping": {"changeRatePercent": 35.5},
        "ssl": {"daysUntilExpiry": 3},
    }
    message = build_message(kind, payload, monitor_id="m-1")
    assert message.title.endswith("- Checkout")
    assert message.variables["reason"] == "why it fired"
    assert "Reason: why it fired" in message.text and "why it fired" in message.html
    samples = {
        "webhook": {"url": "https://hooks.example.net/x"},
        "email": {"smtpHost": "smtp.example.net", "from": "a@example.net", "to": ["b@example.net"]},
        "slack": {"webhookUrl": "https://hooks.slack.com/services/T000/B000/XXXX"},
        "telegram": {"botToken": "123456:" + "a" * 30, "chatId": "12345"},
    }
    for provider_type, provider in PROVIDERS.items():
        body = provider.body(samples.get(provider_type, {}), message)
        assert "why it fired" in body, provider_type
    if kind.startswith("flapping"):
        assert "Change rate: 35.5% of recent runs (weighted)" in message.text


def test_a_webhook_template_gains_reason():
    message = build_message("failure", {"monitorName": "Checkout", "reason": 'TLS "timeout"'})
    body = webhook_body({"template": '{"why": "{{reason}}"}'}, message)
    assert json.loads(body) == {"why": 'TLS "timeout"'}
