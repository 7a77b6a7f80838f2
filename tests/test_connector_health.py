"""The connector never dies quietly: a loop that dies is reported by /health and restarted, /health answers while
Redis hangs, an entry that is not text kills no loop, and a message's delivery count is always Redis's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from openfaas.connector.connector import Connector, ConnectorConfig
from openfaas.connector.liveness import serve_health
from openfaas.local.services import free_port
from shared import streams
from shared.rules.connector_health import LoopView, judge_health
from tests.factories import a_job
from tests.redis_proxy import RedisProxy
from tests.servers import LoopbackHttpServer, wait_until


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (["running", "running"], (200, "ok")),
        (["running", "redis-unavailable"], (200, "degraded")),  # restarting would not bring Redis back
        (["running", "crashed"], (503, "failing")),
        (["redis-unavailable", "crashed"], (503, "failing")),
        (["running", "stopped"], (503, "failing")),
        (["starting"], (503, "failing")),
        ([], (503, "failing")),  # no loop at all reads anything
    ],
)
def test_health_is_failing_while_any_loop_is_down_and_degraded_while_redis_is(conditions, expected):
    loops = [LoopView(f"loop {n}", condition) for n, condition in enumerate(conditions)]
    assert judge_health(loops) == expected


class RunningConnector:
    """A connector reading one stream of its own through a proxy to the real Redis, with its health endpoint."""

    def __init__(self, aio, redis_url: str, gateway_url: str) -> None:
        self.aio = aio
        self.proxy = RedisProxy(redis_url)
        self.stream = streams.job_stream("http_request", f"health-{uuid.uuid4().hex}")
        self.connector = Connector(
            ConnectorConfig(
                redis_url=self.proxy.url,
                gateway_url=gateway_url,
                streams=[self.stream],
                redis_timeout_seconds=1.5,
                restart_after_seconds=0.2,
            )
        )
        self.port = free_port()

        async def start():
            server = await serve_health(self.connector, "127.0.0.1", self.port)
            return server, asyncio.create_task(self.connector.run_forever(reclaim_every_seconds=0.5))

        self.server, self.task = aio.run(start())

    def health(self) -> tuple[int, dict]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5)  # a bound, not a measurement
        return response.status_code, response.json()

    def wait_for(self, verdict: str, message: str) -> dict:
        return wait_until(lambda: (body := self.health()[1])["status"] == verdict and body, message=message)

    def stop(self) -> None:
        async def stop():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.server.close()
            await self.connector.close()

        self.proxy.set_mode("pass")
        self.aio.run(stop())
        self.proxy.stop()


@pytest.fixture
def gateway() -> Iterator[LoopbackHttpServer]:
    server = LoopbackHttpServer(body=b"{}").start()  # a 2xx without a batch reply: the batch is acknowledged
    yield server
    server.stop()


@pytest.fixture
def running(clean, aio, gateway) -> Iterator[RunningConnector]:
    running = RunningConnector(aio, clean.redis_url, gateway.url)
    yield running
    running.stop()


def test_a_loop_that_dies_turns_health_failing_and_is_restarted_until_it_reads_again(running, clean, gateway):
    running.wait_for("ok", "every loop running")
    running.proxy.set_mode("garbage")  # replies no stream command gives: the loops' own code raises on them
    status, body = wait_until(
        lambda: (reply := running.health())[1]["loops"]["read check-http"]["restarts"] >= 2 and reply,
        message="the read loop died, was restarted, and died again",
    )
    assert status == 503 and body["status"] == "failing"
    assert body["loops"]["read check-http"]["condition"] == "crashed"
    assert "'int'" in body["loops"]["read check-http"]["lastError"], "it died of the garbage reply"

    running.proxy.set_mode("pass")
    running.wait_for("ok", "the restarted loops reading again")
    clean.redis().xadd(running.stream, {"data": json.dumps(a_job())})
    gateway.wait_for_requests(1)
    assert [m["stream"] for m in gateway.requests[0].json()["messages"]] == [running.stream]


def test_health_answers_while_redis_hangs_and_says_so(running):
    running.wait_for("ok", "every loop running")
    running.proxy.set_mode("stall")
    status, _ = running.health()  # answered: health never waits on Redis
    assert status == 200
    body = running.wait_for("degraded", "the loops' Redis commands timing out")
    assert "redis-unavailable" in {loop["condition"] for loop in body["loops"].values()}
    running.proxy.set_mode("pass")
    running.wait_for("ok", "Redis answering again")


def test_delivery_counts_come_from_redis_even_when_other_consumers_pending_entries_lie_between(
    clean, aio, gateway
):
    """A range query over the batch's ids was cut off by the entries between them; a missing count read as one
    delivery, so a message failing forever was never dead-lettered."""
    stream = streams.job_stream("http_request", f"gap-{uuid.uuid4().hex}")
    connector = Connector(
        ConnectorConfig(
            redis_url=clean.redis_url, gateway_url=gateway.url, streams=[stream], max_deliveries=5
        )
    )
    r = clean.redis()
    r.xgroup_create(stream, streams.CONSUMER_GROUP, id="0", mkstream=True)

    def add_and_read(consumer: str) -> tuple[str, dict]:
        fields = {"data": json.dumps(a_job())}
        message_id = r.xadd(stream, fields)
        r.xreadgroup(streams.CONSUMER_GROUP, consumer, {stream: ">"}, count=1)
        return message_id, fields

    first = add_and_read(connector.config.consumer)
    others = [add_and_read("another-connector") for _ in range(30)]
    worn_out = add_and_read(connector.config.consumer)
    r.xclaim(stream, streams.CONSUMER_GROUP, connector.config.consumer, 0, [worn_out[0]], retrycount=9)

    async def dispatch():
        try:
            await connector._dispatch(stream, [first, others[0], worn_out])
            await asyncio.gather(*list(connector.in_flight))
        finally:
            await connector.close()

    aio.run(dispatch())
    ((_, dead),) = r.xrange(streams.dead_letter_stream(stream))
    assert dead["id"] == worn_out[0] and dead["reason"].startswith(
        "gave up after 8 deliveries"
    )  # the 9th is not made
    (post,) = gateway.requests
    assert [m["id"] for m in post.json()["messages"]] == [first[0]], (
        "another consumer's message is theirs to deliver"
    )


def test_an_entry_that_is_not_utf8_is_dead_lettered_as_malformed_and_kills_no_loop(running, clean, gateway):
    running.wait_for("ok", "every loop running")
    raw = redis.Redis.from_url(clean.redis_url)  # bytes: the entry is no text
    poison = raw.xadd(running.stream, {"data": b"\xff\xfe not text"})
    dead_letters = streams.dead_letter_stream(running.stream)
    ((_, dead),) = wait_until(lambda: raw.xrange(dead_letters), message="the entry dead-lettered")
    assert dead[b"id"] == poison and dead[b"reason"].startswith(b"malformed stream entry")
    assert dead[b"data"] == b"\xff\xfe not text", "kept byte for byte"
    status, body = running.health()
    assert status == 200 and all(loop["restarts"] == 0 for loop in body["loops"].values())


@pytest.mark.parametrize("answer", ["not a batch reply", "a reply naming another message"])
def test_a_2xx_that_does_not_account_for_the_batch_acknowledges_none_of_it(clean, aio, answer):
    """A proxy's page or a misrouted gateway answers 2xx too; acknowledging then would lose the batch."""
    stream = streams.job_stream("http_request", f"reply-{uuid.uuid4().hex}")
    r = clean.redis()
    r.xgroup_create(stream, streams.CONSUMER_GROUP, id="0", mkstream=True)
    other = r.xadd(stream, {"data": json.dumps(a_job())})
    body = (
        b"<html>ok</html>" if answer == "not a batch reply" else json.dumps({"processed": [other]}).encode()
    )
    gateway = LoopbackHttpServer(body=body).start()
    connector = Connector(
        ConnectorConfig(redis_url=clean.redis_url, gateway_url=gateway.url, streams=[stream])
    )
    message_id = r.xadd(stream, {"data": json.dumps(a_job())})
    r.xreadgroup(streams.CONSUMER_GROUP, "another-connector", {stream: ">"}, count=1)  # takes `other`
    r.xreadgroup(streams.CONSUMER_GROUP, connector.config.consumer, {stream: ">"}, count=1)

    async def dispatch():
        try:
            await connector._dispatch(stream, [(message_id, r.xrange(stream, message_id, message_id)[0][1])])
            await asyncio.gather(*list(connector.in_flight))
        finally:
            await connector.close()

    try:
        aio.run(dispatch())
    finally:
        gateway.stop()
    assert len(gateway.requests) == 1
    assert r.xpending(stream, streams.CONSUMER_GROUP)["pending"] == 2, "neither message was acknowledged"
    assert connector.stats.acked == 0 and connector.stats.failed_posts == (answer == "not a batch reply")
