"""One HTTP exchange done safely: each hop resolved and SSRF-checked, connected by IP with Host and SNI kept."""

from __future__ import annotations

import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

import httpx

from shared.ssrf import IPAddress, resolve_target

USER_AGENT = "supercheck-faas/0.1 (+uptime monitor)"
_READ_CHUNK = 64 * 1024
_BODY_CHANGING_STATUSES = {301, 302, 303}


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """Built once; creating one per check costs milliseconds. Tests add their own CA to this same context."""
    return ssl.create_default_context()


class TooManyRedirects(Exception):
    pass


class PhaseTimer:
    """Collects connect, TLS and wait phases from httpcore's trace events, and DNS time from our own resolver."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[str, float] = {}

    async def trace(self, event: str, info: dict) -> None:
        now = time.perf_counter()
        step, _, stage = event.rpartition(".")
        if step.endswith("send_request_headers") and stage == "started":
            self._started["wait"] = now
        elif step.endswith("receive_response_headers") and stage == "complete" and "wait" in self._started:
            self.seconds["wait"] += now - self._started.pop("wait")
        if stage == "started":
            self._started[step] = now
        elif stage in ("complete", "failed") and step in self._started:
            self.seconds[step] += now - self._started.pop(step)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] += seconds

    def milliseconds(self, phase: str) -> float | None:
        value = self.seconds.get(phase)
        return round(value * 1000, 3) if value is not None else None

    def as_outcome_fields(self) -> dict:
        return {
            "dns_ms": self.milliseconds("dns"),
            "connect_ms": self.milliseconds("connection.connect_tcp"),
            "tls_ms": self.milliseconds("connection.start_tls"),
            "first_byte_ms": self.milliseconds("wait"),
        }


@dataclass
class Exchange:
    """What to send: the URL exactly as given, and the limits the monitor set."""

    method: str
    url: httpx.URL
    headers: dict[str, str]
    content: bytes | None
    timeout_seconds: float
    max_redirects: int
    max_body_bytes: int
    # Headers dropped when a redirect leaves the origin, as browsers do with Authorization.
    origin_bound_headers: frozenset[str] = frozenset()


@dataclass
class HttpFacts:
    status_code: int
    url: httpx.URL
    address: str
    http_version: str
    headers: httpx.Headers
    body: bytes
    body_truncated: bool
    redirects: list[str] = field(default_factory=list)
    peer_certificate: bytes | None = None

    def text(self) -> str:
        charset = self.headers.get_list("content-type")
        encoding = "utf-8"
        for value in charset:
            for part in value.split(";"):
                key, _, found = part.strip().partition("=")
                if key.lower() == "charset" and found:
                    encoding = found.strip("\"'")
        try:
            return self.body.decode(encoding, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def _origin(url: httpx.URL) -> tuple:
    return url.scheme, url.host, url.port


def _redirected(exchange: Exchange, facts: HttpFacts, location: str) -> Exchange:
    url = facts.url.join(location)
    if url.scheme not in ("http", "https") or not url.host:
        raise TooManyRedirects(f"Redirect to an unsupported location: {location[:200]}")
    method, content, headers = exchange.method, exchange.content, dict(exchange.headers)
    if facts.status_code in _BODY_CHANGING_STATUSES and method not in ("GET", "HEAD"):
        method, content = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
    if _origin(url) != _origin(exchange.url):
        headers = {k: v for k, v in headers.items() if k.lower() not in exchange.origin_bound_headers}
    return Exchange(
        method,
        url,
        headers,
        content,
        exchange.timeout_seconds,
        exchange.max_redirects,
        exchange.max_body_bytes,
        exchange.origin_bound_headers,
    )


async def _send_to(address: IPAddress, exchange: Exchange, timer: PhaseTimer) -> HttpFacts:
    url = exchange.url
    request = httpx.Request(
        exchange.method,
        url.copy_with(host=str(address)),
        headers={"Host": url.netloc.decode("ascii"), "User-Agent": USER_AGENT, **exchange.headers},
        content=exchange.content,
        extensions={
            "timeout": httpx.Timeout(exchange.timeout_seconds).as_dict(),
            "trace": timer.trace,
            "sni_hostname": url.raw_host.decode("ascii"),
        },
    )
    # A transport per hop: a fresh connection every check, never one reused across hosts that share an IP.
    async with httpx.AsyncHTTPTransport(verify=tls_context(), retries=0) as transport:
        try:
            response = await transport.handle_async_request(request)
        except httpx.HTTPError as error:
            error.request = request  # which address and SNI failed, for the caller's diagnosis
            raise
        try:
            certificate = None
            if url.scheme == "https":
                ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
                certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
            body, truncated = bytearray(), False
            if exchange.method != "HEAD":
                async for chunk in response.aiter_bytes(_READ_CHUNK):
                    body += chunk
                    if len(body) > exchange.max_body_bytes:
                        del body[exchange.max_body_bytes :]
                        truncated = True
                        break
        finally:
            await response.aclose()
    return HttpFacts(
        status_code=response.status_code,
        url=url,
        address=str(address),
        http_version=response.extensions.get("http_version", b"HTTP/1.1").decode(),
        headers=response.headers,
        body=bytes(body),
        body_truncated=truncated,
        peer_certificate=certificate,
    )


async def send_once(exchange: Exchange, timer: PhaseTimer) -> HttpFacts:
    """One hop: resolve and vet every address, then try them in order until one connects."""
    started = time.perf_counter()
    addresses = await resolve_target(exchange.url.host, exchange.url.port)
    timer.add("dns", time.perf_counter() - started)
    for index, address in enumerate(addresses):
        try:
            return await _send_to(address, exchange, timer)
        except httpx.ConnectError as error:
            if index == len(addresses) - 1 or isinstance(_ssl_cause(error), ssl.SSLError):
                raise
    raise AssertionError("unreachable: resolve_target never returns an empty list")


async def fetch(exchange: Exchange, timer: PhaseTimer) -> HttpFacts:
    """Follows redirects itself (at most max_redirects), so every hop gets the same SSRF vetting."""
    redirects: list[str] = []
    while True:
        facts = await send_once(exchange, timer)
        facts.redirects = redirects
        location = facts.headers.get("location")
        if not (300 <= facts.status_code < 400 and location) or exchange.max_redirects == 0:
            return facts
        if len(redirects) >= exchange.max_redirects:
            raise TooManyRedirects(f"Stopped after {exchange.max_redirects} redirects (the limit)")
        exchange = _redirected(exchange, facts, location)
        redirects.append(str(exchange.url))


def _ssl_cause(error: BaseException) -> BaseException | None:
    """httpx wraps the ssl module's error; the original carries the verification reason."""
    seen = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def ssl_error_of(error: BaseException) -> ssl.SSLError | None:
    cause = _ssl_cause(error)
    return cause if isinstance(cause, ssl.SSLError) else None
