"""Real loopback servers for tests: a switchable HTTP target and a webhook receiver that records requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client: str = ""

    def json(self):
        return json.loads(self.body)


@dataclass
class LoopbackHttpServer:
    """Answers every request with `status` after `delay` seconds, and records what it received."""

    host: str = "127.0.0.1"
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    # Optional: the status to answer a given client address with (regions told apart by source address).
    status_for_client: Callable[[str], int] | None = None
    # Optional: requests are answered only once this is set (a check held mid-flight while a test acts).
    hold: threading.Event | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> LoopbackHttpServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b""
                client = self.client_address[0]
                owner.requests.append(
                    RecordedRequest(self.command, self.path, dict(self.headers), payload, client)
                )
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.hold is not None:
                    owner.hold.wait(60)
                self.send_response(
                    owner.status_for_client(client) if owner.status_for_client else owner.status
                )
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(owner.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} request(s), got {len(self.requests)}")
            time.sleep(0.05)
        return self.requests


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


def wait_for_pings_written(infra, timeout: float = 30.0) -> None:
    """Every ping the ping function has accepted is written: aggregate has acknowledged all of sc:pings (its
    answer to a ping means "queued"; shared/heartbeats/intake.py)."""
    import redis

    client = infra.redis()

    def drained() -> bool:
        try:
            groups = [g for g in client.xinfo_groups("sc:pings") if g["name"] == "sc-connector"]
        except redis.ResponseError:  # no ping accepted yet
            return True
        newest = client.xrevrange("sc:pings", count=1)
        if not newest:
            return True
        return bool(groups) and all(
            int(g["pending"]) == 0 and g["last-delivered-id"] == newest[0][0] for g in groups
        )

    try:
        wait_until(drained, timeout=timeout, message="the accepted pings to be written")
    finally:
        client.close()
