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


class BlockingGateway:
    """A loopback gateway: check-http answers only once released; every other function answers at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.calls.append(self.path)
                if self.path.endswith("/check-http"):
                    owner.release.wait(30)
                reply = json.dumps(
                    {"processed": [m["id"] for m in body["messages"]], "rejected": []}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

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
