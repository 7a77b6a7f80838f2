"""Killing the connector after a function committed but before XACK loses nothing and doubles nothing."""

from __future__ import annotations

import signal

import httpx

from shared import streams
from tests.factories import all_consumed
from tests.servers import wait_until


def test_connector_killed_between_commit_and_ack_loses_and_doubles_nothing(stack, clean, http_target):
    http_target.delay = 2.0  # keeps the batch in flight long enough to kill the connector mid-request
    api = httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30)
    monitor = api.post(
        "/api/monitors", json={"name": "slow", "type": "http", "target": http_target.url}
    ).json()

    http_target.wait_for_requests(1, timeout=30)
    stack.kill(
        "connector", signal.SIGKILL
    )  # the check is running; the function will commit, nobody will XACK
    wait_until(
        lambda: clean.sql("select count(*) from monitor_results")[0][0] == 3, message="function commits"
    )
    r = clean.redis()
    pending = sum(r.xpending(s, streams.CONSUMER_GROUP)["pending"] for s in r.keys("sc:jobs:*"))
    assert pending > 0, "the killed connector never acknowledged its batch"

    # The supervisor restarts the connector (as OpenFaaS would); it reclaims the idle messages.
    wait_until(
        lambda: api.get(f"/api/monitors/{monitor['id']}").json()["status"] == "up",
        timeout=60,
        message="run finalized after restart",
    )
    wait_until(lambda: all_consumed(r), timeout=60, message="nothing left pending")
    assert clean.sql("select count(*), count(distinct (run_id, location)) from monitor_results") == [(3, 3)]
    assert clean.sql("select count(*) from runs where finalized_at is not null") == [(1,)]
    assert len(http_target.requests) == 3, "reclaimed jobs whose results were committed are not re-run"
    assert not r.keys("*:dead")
    assert stack.children["connector"].restarts >= 1
