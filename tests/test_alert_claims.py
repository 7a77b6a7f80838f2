"""Issue 16, fault 2: an alert is not lost when the alert function dies mid-send. The send's claim stays
'sending'; a redelivery that finds it fresh leaves the message unacknowledged instead of skipping it, and once
the claim expires the next delivery sends. Each delivery carries the alert's deliveryKey, the same every time.

Against the real local stack (gateway, alert function, connector), a real webhook receiver that holds its first
request, and kill -9."""

from __future__ import annotations

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from shared import streams
from shared.redis import publish
from shared.settings import Settings
from tests.factories import add_alert, add_provider

# Longer than the connector takes to deliver the message again (idle 1.5 s, reclaimed every 5 s, the alert
# function restarted), so that delivery meets a fresh claim: skipping it then would lose the alert.
CLAIM_EXPIRY_SECONDS = 30


class HoldingReceiver:
    """A webhook receiver whose first request hangs until released; every request's body is kept."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.bodies.append(body)
                if len(owner.bodies) == 1:
                    owner.first_arrived.set()
                    owner.release.wait(60)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()


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


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_alert_whose_sender_was_killed_mid_send_is_delivered_once_its_claim_expires(
    clean, aio, claim_stack, internal_targets
):
    receiver = HoldingReceiver()
    try:
        provider_id = add_provider(clean, {"url": receiver.url})
        event = add_alert(clean, [provider_id])
        aio.run(publish([(streams.ALERTS_STREAM, event)]))

        assert receiver.first_arrived.wait(30), "the alert function never reached the webhook"
        assert clean.sql("select status from alert_history") == [("sending",)]
        claim_stack.kill("alert", signal.SIGKILL)  # mid-send: the webhook still holds the request
        receiver.release.set()

        wait_for(
            lambda: clean.sql("select status from alert_history") == [("sent",)], 60, "the alert to be sent"
        )
        r = clean.redis()
        wait_for(
            lambda: r.xpending(streams.ALERTS_STREAM, streams.CONSUMER_GROUP)["pending"] == 0,
            30,
            "the alert message to be acknowledged",
        )
        assert r.xlen(streams.dead_letter_stream(streams.ALERTS_STREAM)) == 0, "nothing was dead-lettered"
        keys = {body["deliveryKey"] for body in receiver.bodies}
        assert keys == {f"supercheck-{event.run_id}-failure"}, (
            "every delivery carries the alert's one dedup key"
        )
        assert len(receiver.bodies) == 2, "the request the dead sender made, and the one retry"
    finally:
        receiver.stop()


def test_the_claim_outlives_any_live_alert_function():
    """A claim must not expire while its sender may still be running: at least the function's exec_timeout."""
    stack = yaml.safe_load((Path(__file__).resolve().parent.parent / "stack.yml").read_text())
    exec_timeout = stack["functions"]["alert"]["environment"]["exec_timeout"]
    assert exec_timeout.endswith("s")
    assert Settings.model_fields["alert_claim_expiry_seconds"].default >= int(exec_timeout[:-1])
