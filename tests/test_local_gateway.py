"""The local gateway as the runtime serves it (uvicorn, GATEWAY_UPSTREAMS): what it forwards, what it drops, what
it streams, and its 502 when a function is down."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from openfaas.local.services import die_with_parent, free_port, wait_for_port


class Upstream:
    """A function stand-in: /echo answers with what it received, /cookies sets two cookies, /sign-in redirects
    with a cookie, /stream sends one event, then a second only once released."""

    def __init__(self):
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/cookies"):
                    self._send(200, b"", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")])
                elif self.path.startswith("/sign-in"):  # as the dashboard's: a cookie and a 303 to follow
                    self._send(303, b"", [("Location", "/function/fn/echo"), ("Set-Cookie", "s=1; Path=/")])
                elif self.path.startswith("/stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self._chunk(b"data: first\n\n")
                    owner.release.wait(30)
                    self._chunk(b"data: second\n\n")
                    self._chunk(b"")
                else:
                    echoed = {
                        "method": self.command,
                        "path": self.path,
                        "headers": [[k.lower(), v] for k, v in self.headers.items()],
                        "bodyLength": len(body),
                        "bodyHead": body[:16].decode("latin-1"),
                    }
                    self._send(200, json.dumps(echoed).encode(), [("Content-Type", "application/json")])

            def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def gateway():
    upstream = Upstream()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "openfaas.local.gateway:app_from_env"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
        # "down": a port nothing listens on, as a function whose process died
        env={
            **os.environ,
            "GATEWAY_UPSTREAMS": json.dumps({"fn": upstream.url, "down": f"http://127.0.0.1:{free_port()}"}),
        },
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=30, process=process)
        yield f"http://127.0.0.1:{port}", upstream
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.stop()


def test_the_path_travels_with_its_percent_encoding_and_its_query(gateway):
    url, _ = gateway
    # http.client sends the path as written (httpx would normalize it)
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", "/function/fn/echo/a%2Fb/%7Euser?x=1&y=%20z")
        echoed = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert echoed["path"] == "/echo/a%2Fb/%7Euser?x=1&y=%20z"


def test_forwarded_headers_gain_x_forwarded_host_and_lose_hop_by_hop_ones(gateway):
    url, upstream = gateway
    echoed = httpx.get(
        f"{url}/function/fn/echo",
        headers={"Host": "status.example.net", "TE": "trailers", "Keep-Alive": "timeout=5", "X-Mine": "kept"},
    ).json()
    headers = dict(echoed["headers"])
    assert headers["x-forwarded-host"] == "status.example.net"
    assert headers["x-mine"] == "kept"
    assert headers["host"] == upstream.url.removeprefix("http://"), "the upstream's own host"
    assert not {"te", "keep-alive"} & set(headers)
    already = httpx.get(f"{url}/function/fn/echo", headers={"X-Forwarded-Host": "front.example.net"}).json()
    assert [v for k, v in already["headers"] if k == "x-forwarded-host"] == ["front.example.net"]


def test_request_bodies_arrive_whole_large_or_empty(gateway):
    url, _ = gateway
    large = b"PK\x03\x04" + os.urandom(3 * 1024 * 1024)
    echoed = httpx.post(f"{url}/function/fn/echo", content=large, timeout=60).json()
    assert (echoed["method"], echoed["bodyLength"]) == ("POST", len(large))
    assert echoed["bodyHead"] == large[:16].decode("latin-1")
    empty = httpx.post(f"{url}/function/fn/echo", content=b"").json()
    assert empty["bodyLength"] == 0 and dict(empty["headers"]).get("content-length") == "0"


def test_two_set_cookie_headers_stay_two(gateway):
    url, _ = gateway
    response = httpx.get(f"{url}/function/fn/cookies")
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_a_redirect_reaches_the_client_with_its_cookie_not_followed_by_the_gateway(gateway):
    url, _ = gateway
    response = httpx.post(f"{url}/function/fn/sign-in", content=b"key=x")
    assert response.status_code == 303
    assert response.headers["location"] == "/function/fn/echo"
    assert response.headers["set-cookie"] == "s=1; Path=/"


def test_a_stream_is_passed_on_as_it_comes_not_when_it_ends(gateway):
    url, upstream = gateway
    upstream.release.clear()
    with httpx.stream("GET", f"{url}/function/fn/stream", timeout=30) as response:
        assert response.headers["content-type"] == "text/event-stream"
        chunks = response.iter_raw()
        assert next(chunks) == b"data: first\n\n", "before the upstream has finished"
        upstream.release.set()
        assert b"".join(chunks) == b"data: second\n\n"


def test_a_function_that_is_down_is_a_502_with_a_json_error(gateway):
    url, _ = gateway
    response = httpx.get(f"{url}/function/down/anything")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_gateway"
    assert response.json()["error"]["message"].startswith("down: ")
    unknown = httpx.get(f"{url}/function/nothing")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
