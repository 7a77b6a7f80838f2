"""The connector keeps each function's deliveries apart: a check function slow to answer (slow targets, jobs
waiting for their slot) never holds up results on their way to aggregate."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openfaas.connector.connector import Connector, ConnectorConfig
from shared import streams
from shared.models import ResultEnvelope
from shared.redis import publish, publish_payloads
from tests.factories import a_job
from tests.servers import wait_until


class BatchHandler(BaseHTTPRequestHandler):
    """A loopback function's side of the connector's POST: every entry answered as processed."""

    def answer(self, ids: list[str]) -> None:
        reply = json.dumps({"processed": ids, "rejected": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def serve(handler: type[BatchHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class BlockingGateway:
    """A loopback gateway: check-http answers only once released; every other function answers at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        owner = self

        class Handler(BatchHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.calls.append(self.path)
                if self.path.endswith("/check-http"):
                    owner.release.wait(30)
                self.answer([m["id"] for m in body["messages"]])

        self.server, self.url = serve(Handler)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()


def test_results_reach_aggregate_while_every_check_slot_is_busy(clean, aio):
    gateway = BlockingGateway()
    job_stream = streams.job_stream("http_request", "us-east")
    result = ResultEnvelope(run_id=uuid.uuid4(), monitor_id=uuid.uuid4(), location="us-east", status="up")
    aio.run(publish_payloads([(job_stream, json.dumps(a_job())) for _ in range(3)]))
    aio.run(publish([(streams.RESULTS_STREAM, result)]))
    connector = Connector(
        ConnectorConfig(
            redis_url=clean.redis_url,
            gateway_url=gateway.url,
            streams=[job_stream, streams.RESULTS_STREAM],
            batch_size=1,
            concurrency=1,  # one check POST in flight fills check-http's slots
        )
    )

    async def run() -> None:
        loop = asyncio.create_task(connector.run_forever())
        try:
            await asyncio.to_thread(
                wait_until,
                lambda: any(call.endswith("/aggregate") for call in gateway.calls),
                10,
                0.05,
                "aggregate's delivery",
            )
            assert sum(call.endswith("/check-http") for call in gateway.calls) == 1, "check-http still busy"
            assert not gateway.release.is_set()
            gateway.release.set()
            await asyncio.to_thread(
                wait_until,
                lambda: sum(call.endswith("/check-http") for call in gateway.calls) == 3,
                10,
                0.05,
                "the other jobs once check-http answers",
            )
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await connector.close()

    try:
        aio.run(run())
    finally:
        gateway.stop()


class CountingGateway:
    """A loopback gateway that holds each sc:pings POST a moment and records how many were in flight at once and
    the entries each carried; results are answered at once."""

    def __init__(self, hold_seconds: float) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.ping_posts: list[list[str]] = []
        self.result_posts = 0
        owner = self

        class Handler(BatchHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ids = [m["id"] for m in body["messages"]]
                if body["messages"][0]["stream"] == streams.PINGS_STREAM:
                    with owner.lock:
                        owner.in_flight += 1
                        owner.most_in_flight = max(owner.most_in_flight, owner.in_flight)
                    threading.Event().wait(hold_seconds)
                    with owner.lock:
                        owner.in_flight -= 1
                        owner.ping_posts.append(ids)
                else:
                    with owner.lock:
                        owner.result_posts += 1
                self.answer(ids)

        self.server, self.url = serve(Handler)


def test_pings_are_posted_one_batch_at_a_time_in_order_and_deleted_once_acknowledged(clean, aio):
    gateway = CountingGateway(hold_seconds=0.2)
    aio.run(publish_payloads([(streams.PINGS_STREAM, json.dumps({"n": n})) for n in range(10)]))
    added = [entry_id for entry_id, _ in clean.redis().xrange(streams.PINGS_STREAM)]
    connector = Connector(
        ConnectorConfig(
            redis_url=clean.redis_url,
            gateway_url=gateway.url,
            streams=[streams.RESULTS_STREAM, streams.PINGS_STREAM],
            batch_size=2,
            concurrency=8,  # room for five ping POSTs at once, were the stream not ordered
        )
    )
    result = ResultEnvelope(run_id=uuid.uuid4(), monitor_id=uuid.uuid4(), location="us-east", status="up")

    async def run() -> None:
        loop = asyncio.create_task(connector.run_forever())
        try:
            await asyncio.to_thread(wait_until, lambda: gateway.in_flight, 10, 0.01, "the first ping POST")
            await publish([(streams.RESULTS_STREAM, result)])
            await asyncio.to_thread(wait_until, lambda: gateway.result_posts, 10, 0.01, "the result's POST")
            assert len(gateway.ping_posts) < 5, "the result did not wait for every ping batch"
            await asyncio.to_thread(
                wait_until, lambda: len(gateway.ping_posts) == 5, 10, 0.05, "every ping batch"
            )
            redis = clean.redis()
            await asyncio.to_thread(
                wait_until,
                lambda: redis.xlen(streams.PINGS_STREAM) == 0,
                10,
                0.05,
                "pings deleted once acked",
            )
            assert redis.xlen(streams.RESULTS_STREAM) == 1, "other streams keep theirs, to look back at"
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await connector.close()

    try:
        aio.run(run())
    finally:
        gateway.server.shutdown()
    assert gateway.most_in_flight == 1
    assert [entry_id for post in gateway.ping_posts for entry_id in post] == added
    assert [len(post) for post in gateway.ping_posts] == [2] * 5
