"""A DNS answer set's change against the previous one (pure, by table)."""

from __future__ import annotations

import pytest

from shared.rules.dns_changes import AnswerChange, answer_change, answer_values


@pytest.mark.parametrize(
    "previous, current, change",
    [
        (None, ["192.0.2.10"], None),  # the first answer: nothing to compare with
        (["192.0.2.10"], None, None),  # no answer now (timeout): says nothing about the records
        (["192.0.2.10", "192.0.2.11"], ["192.0.2.11", "192.0.2.10"], None),  # order does not count
        (["192.0.2.10"], ["192.0.2.10", "192.0.2.10"], None),
        (["192.0.2.10"], ["192.0.2.99"], AnswerChange(("192.0.2.10",), ("192.0.2.99",))),
        (["192.0.2.10"], ["192.0.2.10", "192.0.2.99"], AnswerChange((), ("192.0.2.99",))),
        (["192.0.2.10"], [], AnswerChange(("192.0.2.10",), ())),  # NXDOMAIN now: the records went away
    ],
)
def test_a_change_is_the_difference_of_two_answer_sets(previous, current, change):
    assert answer_change(previous, current) == change


def test_a_change_reads_as_removed_then_added_values():
    change = AnswerChange(("192.0.2.10",), ("192.0.2.98", "192.0.2.99"))
    assert change.text == "records changed: - 192.0.2.10 + 192.0.2.98 + 192.0.2.99"
    assert change.to_json() == {"removed": ["192.0.2.10"], "added": ["192.0.2.98", "192.0.2.99"]}


@pytest.mark.parametrize(
    "details, values",
    [
        ({"rcode": "NOERROR", "answers": [{"value": "192.0.2.1", "ttl": 60}]}, ["192.0.2.1"]),
        ({"rcode": "NXDOMAIN", "answers": []}, []),
        ({"recordType": "A", "resolvers": ["192.0.2.53:53"]}, None),  # no resolver answered
        ({}, None),
        (None, None),
        ({"rcode": "NOERROR", "answers": "garbled"}, None),
    ],
)
def test_only_a_result_that_got_an_answer_has_answer_values(details, values):
    assert answer_values(details) == values


def test_a_change_alerts_once_only_where_the_monitor_asks_and_its_alerts_are_on():
    from datetime import UTC, datetime, timedelta

    from shared.models import AlertConfig
    from shared.rules.alerts import AlertPolicy, MaintenanceWindow
    from shared.rules.dns_changes import change_alerts

    now = datetime(2026, 12, 3, 14, tzinfo=UTC)
    changes = {"us-east": {"removed": ["192.0.2.10"], "added": ["192.0.2.99"]}}
    on = AlertPolicy(AlertConfig(enabled=True))
    [action] = change_alerts(True, changes, on, now, now)
    assert (action.kind, action.suppressed_reason, action.details) == (
        "dns_changed",
        None,
        {"changes": changes},
    )
    assert change_alerts(False, changes, on, now, now) == []
    assert change_alerts(True, {}, on, now, now) == []
    assert change_alerts(True, changes, AlertPolicy(AlertConfig(enabled=False)), now, now) == []
    assert change_alerts(True, changes, None, now, now) == []
    window = MaintenanceWindow(
        name="dns move", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    [held] = change_alerts(True, changes, AlertPolicy(AlertConfig(enabled=True), (window,)), now, now)
    assert held.suppressed_reason and "dns move" in held.suppressed_reason
