"""Issue 16, fault 2: an alert is not lost when the alert function dies mid-send. The send's claim stays
'sending'; a redelivery that finds it fresh leaves the message unacknowledged instead of skipping it, and once
the claim expires the next delivery sends. Each delivery carries the alert's deliveryKey, the same every time.

Against the real local stack (gateway, alert function, connector), a real webhook receiver that holds its first
request, and kill -9."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest
import yaml

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from shared import streams
from shared.redis import publish
from shared.settings import Settings
from tests.factories import add_alert, add_provider
from tests.servers import LoopbackHttpServer, wait_until

# Longer than the connector takes to deliver the message again (idle 1.5 s, reclaimed every 5 s, the alert
# function restarted), so that delivery meets a fresh claim: skipping it then would lose the alert.
CLAIM_EXPIRY_SECONDS = 30


@pytest.fixture(scope="module")
def claim_stack(infra, tmp_path_factory):
    stack = LocalStack(
        env={
            "ALLOW_INTERNAL_TARGETS": "true",
            "CONNECTOR_IDLE_RECLAIM_MS": "1500",
            "ALERT_CLAIM_EXPIRY_SECONDS": str(CLAIM_EXPIRY_SECONDS),
            "CONNECTOR_MAX_DELIVERIES": "50",
            "SC_ALLOW_ANONYMOUS_LOCAL": "true",
        },
        log_dir=tmp_path_factory.mktemp("claim-logs"),
        gateway_port=free_port(),
        with_cron=False,
    ).start()
    yield stack
    stack.stop()


def test_an_alert_whose_sender_was_killed_mid_send_is_delivered_once_its_claim_expires(
    clean, aio, claim_stack, internal_targets
):
    release = threading.Event()
    receiver = LoopbackHttpServer(hold=release).start()  # holds each request until released
    try:
        provider_id = add_provider(clean, {"url": receiver.url})
        event = add_alert(clean, [provider_id])
        aio.run(publish([(streams.ALERTS_STREAM, event)]))

        receiver.wait_for_requests(1)
        assert clean.sql("select status from alert_history") == [("sending",)]
        claim_stack.kill("alert", signal.SIGKILL)  # mid-send: the webhook still holds the request
        release.set()

        wait_until(
            lambda: clean.sql("select status from alert_history") == [("sent",)],
            60,
            0.2,
            "the alert to be sent",
        )
        r = clean.redis()
        wait_until(
            lambda: r.xpending(streams.ALERTS_STREAM, streams.CONSUMER_GROUP)["pending"] == 0,
            30,
            0.2,
            "the alert message to be acknowledged",
        )
        assert r.xlen(streams.dead_letter_stream(streams.ALERTS_STREAM)) == 0, "nothing was dead-lettered"
        bodies = [request.json() for request in receiver.requests]
        keys = {body["deliveryKey"] for body in bodies}
        assert keys == {f"supercheck-{event.run_id}-failure"}, (
            "every delivery carries the alert's one dedup key"
        )
        assert len(bodies) == 2, "the request the dead sender made, and the one retry"
    finally:
        release.set()
        receiver.stop()


def test_the_claim_outlives_any_live_alert_function():
    """A claim must not expire while its sender may still be running: at least the function's exec_timeout."""
    stack = yaml.safe_load((Path(__file__).resolve().parent.parent / "stack.yml").read_text())
    exec_timeout = stack["functions"]["alert"]["environment"]["exec_timeout"]
    assert exec_timeout.endswith("s")
    assert Settings.model_fields["alert_claim_expiry_seconds"].default >= int(exec_timeout[:-1])
