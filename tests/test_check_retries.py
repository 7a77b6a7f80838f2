"""Retries inside a location (config.retry), run by run_check against real loopback servers: a failed attempt is
tried again after its wait, every attempt is recorded, and the budget counts every attempt and wait."""

from __future__ import annotations

import asyncio
import threading

import pytest
from pydantic import ValidationError

from shared.checks import CHECK_TYPES, configured_timeout, run_check
from shared.checks.base import MAX_CHECK_SECONDS, retry_delays
from shared.models import FAILED_STATUSES, CheckJob
from tests.factories import a_job
from tests.servers import LoopbackHttpServer

pytestmark = pytest.mark.usefixtures("internal_targets")


@pytest.mark.parametrize(
    ("retry", "delays"),
    [
        (None, []),
        ({"count": 0}, []),
        ({"count": 3, "backoff": "fixed", "delaySeconds": 2}, [2, 2, 2]),
        ({"count": 3, "backoff": "linear", "delaySeconds": 2}, [2, 4, 6]),
        ({"count": 3, "backoff": "exponential", "delaySeconds": 2}, [2, 4, 8]),
        ({"count": 2}, [1, 1]),
    ],
)
def test_the_waits_between_attempts_follow_the_backoff(retry, delays):
    assert retry_delays(retry) == delays


def test_the_budget_counts_every_attempt_and_every_wait():
    retry = {"count": 2, "backoff": "linear", "delaySeconds": 3}
    assert configured_timeout("http_request", {"timeoutSeconds": 10, "retry": retry}) == 3 * 10 + 3 + 6
    assert configured_timeout("port_check", {"port": 1, "retry": retry}) == 3 * 10 + 9
    ping = {"count": 2, "intervalSeconds": 1, "timeoutSeconds": 5, "retry": retry}
    assert configured_timeout("ping_host", ping) == 3 * (2 + 5) + 9, (
        "a ping attempt is its sends and its wait"
    )


@pytest.mark.parametrize("check_type", [name for name in CHECK_TYPES if name != "synthetic_test"])
def test_every_type_but_synthetic_takes_a_retry_that_fits_and_refuses_one_that_does_not(check_type):
    target = {"ping_host": "127.0.0.1", "port_check": "127.0.0.1", "dns": "example.net"}.get(
        check_type, "http://127.0.0.1/"
    )
    extra = {"port": 80} if check_type == "port_check" else {}
    model = CHECK_TYPES[check_type].config_model
    model.model_validate({"target": target, **extra, "timeoutSeconds": 5, "retry": {"count": 1}})
    with pytest.raises(ValidationError) as raised:
        model.model_validate(
            {"target": target, **extra, "timeoutSeconds": MAX_CHECK_SECONDS, "retry": {"count": 1}}
        )
    assert "retry:" in str(raised.value)


def test_synthetic_tests_keep_their_own_retries():
    with pytest.raises(ValidationError):
        CHECK_TYPES["synthetic_test"].config_model.model_validate(
            {"target": "00000000-0000-0000-0000-000000000000", "retry": {"count": 1}}
        )


def http_job(url: str, retry: dict) -> CheckJob:
    return CheckJob.model_validate(
        a_job(target=url, config={"timeoutSeconds": 5, "retry": retry, "expectedStatusCodes": "200"})
    )


def test_a_target_that_fails_its_first_request_is_up_on_the_retry_with_both_attempts_recorded():
    served = threading.Event()

    def first_fails(_client: str) -> int:
        if served.is_set():
            return 200
        served.set()
        return 503

    server = LoopbackHttpServer(status_for_client=first_fails).start()
    try:
        outcome = asyncio.run(run_check(http_job(server.url, {"count": 2, "delaySeconds": 1})))
    finally:
        server.stop()
    assert outcome.status == "up"
    attempts = outcome.details["attempts"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "down"), (2, "up")]
    assert "503" in attempts[0]["error"] and attempts[1]["error"] is None
    assert len(server.requests) == 2


def test_a_target_that_keeps_failing_is_tried_count_plus_one_times_and_reports_the_last_failure():
    server = LoopbackHttpServer(status=500).start()
    try:
        outcome = asyncio.run(run_check(http_job(server.url, {"count": 2, "delaySeconds": 1})))
    finally:
        server.stop()
    assert outcome.status == "down" and "500" in outcome.message
    assert [a["status"] for a in outcome.details["attempts"]] == ["down", "down", "down"]
    assert all("500" in a["error"] for a in outcome.details["attempts"])
    assert len(server.requests) == 3


def test_a_passing_check_is_not_retried_and_says_it_took_one_attempt():
    server = LoopbackHttpServer().start()
    try:
        outcome = asyncio.run(run_check(http_job(server.url, {"count": 3, "delaySeconds": 1})))
    finally:
        server.stop()
    assert outcome.status == "up"
    assert [a["attempt"] for a in outcome.details["attempts"]] == [1]
    assert len(server.requests) == 1


def test_no_retry_without_room_left_inside_the_time_allowed():
    server = LoopbackHttpServer(status=500).start()
    try:
        # the caller allows 0.9 s: never room for a 1 s wait, so one attempt reports
        outcome = asyncio.run(run_check(http_job(server.url, {"count": 3, "delaySeconds": 1}), limit=0.9))
    finally:
        server.stop()
    assert outcome.status in FAILED_STATUSES
    assert len(outcome.details["attempts"]) == 1


def test_a_check_without_retries_records_no_attempts():
    server = LoopbackHttpServer(status=500).start()
    try:
        outcome = asyncio.run(run_check(CheckJob.model_validate(a_job(target=server.url))))
    finally:
        server.stop()
    assert "attempts" not in outcome.details
