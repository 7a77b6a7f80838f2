"""One HTTP exchange done safely: each hop resolved and SSRF-checked, connected by IP with Host and SNI kept.
Used by the HTTP and website checks (shared/checks/http.py), run by the check-http function."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import httpcore
import httpx

from shared.checks.body_budget import BodyLease
from shared.checks.egress import source_address_for
from shared.ssrf import IPAddress, resolve_target

USER_AGENT = "supercheck-faas/0.1 (+uptime monitor)"
_DEFAULT_HEADERS = ((b"User-Agent", USER_AGENT.encode()), (b"Accept", b"*/*"))  # a monitor's own headers win
_READ_CHUNK = 64 * 1024
# Kept of a body no assertion reads, for the excerpt a failure shows (300 characters, up to 4 bytes each).
EXCERPT_BYTES = 1200
_BODY_CHANGING_STATUSES = {301, 302, 303}
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    # Whether an assertion (keyword, JSON path) reads the body; if not, it is streamed, counted and dropped.
    keeps_body: bool = True
    # The check's share of the process's body buffer (shared.checks.body_budget); None buffers without a bound.
    lease: BodyLease | None = None


@dataclass
class HttpFacts:
    status_code: int
    url: httpx.URL
    address: str
    http_version: str
    headers: httpx.Headers
    body: bytes  # the whole body (up to the cap) when the exchange keeps it, else its first EXCERPT_BYTES
    body_truncated: bool
    body_bytes: int  # how much was read, kept or not
    redirects: list[str] = field(default_factory=list)
    peer_certificate: bytes | None = None

    def text(self, limit_bytes: int | None = None) -> str:
        """The body decoded by its charset; limit_bytes decodes only a prefix (an excerpt needs no more)."""
        body = self.body if limit_bytes is None else self.body[:limit_bytes]
        charset = self.headers.get_list("content-type")
        encoding = "utf-8"
        for value in charset:
            for part in value.split(";"):
                key, _, found = part.strip().partition("=")
                if key.lower() == "charset" and found:
                    encoding = found.strip("\"'")
        try:
            return body.decode(encoding, errors="replace")
        except LookupError:
            return body.decode("utf-8", errors="replace")


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
        exchange.keeps_body,
        exchange.lease,
    )


class _AsyncioStream(httpcore.AsyncNetworkStream):
    """httpcore's stream over plain asyncio: the check's own asyncio.timeout bounds it, so no per-read scopes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            return await self._reader.read(max_bytes)
        except OSError as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        try:
            self._writer.write(buffer)
            await self._writer.drain()
        except OSError as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature; the check's own timeout bounds it)
    ) -> httpcore.AsyncNetworkStream:
        try:
            await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except (OSError, ssl.SSLError) as error:  # SSLError is an OSError; named for the reader
            self._writer.close()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        return self

    def get_extra_info(self, info: str) -> object:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info in ("client_addr", "server_addr"):
            return self._writer.get_extra_info("sockname" if info == "client_addr" else "peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class _AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ASYNC109
        try:
            source = source_address_for(host)
            reader, writer = await asyncio.open_connection(
                host, port, limit=_READ_CHUNK, local_addr=(source, 0) if source else None
            )
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        return _AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: ASYNC109
        raise httpcore.ConnectError("unix sockets are not check targets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_BACKEND = _AsyncioBackend()
# httpcore's errors as httpx's, the most specific first, so callers handle one family.
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.TimeoutException, httpx.TimeoutException),
)


@contextmanager
def _httpx_errors(describe_request: Callable[[], httpx.Request]):
    """The request (which address, which SNI) is built only when something failed, to keep checks cheap."""
    try:
        yield
    except httpx.HTTPError as error:
        error.request = describe_request()
        raise
    except Exception as error:
        for core_type, httpx_type in _HTTPX_ERRORS:
            if isinstance(error, core_type):
                raise httpx_type(str(error) or type(error).__name__, request=describe_request()) from error
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream) -> None:
        self._stream = stream

    async def __aiter__(self):
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


def _request_headers(exchange: Exchange) -> list[tuple[bytes, bytes]]:
    given = {name.lower() for name in exchange.headers}
    headers = [(b"Host", exchange.url.netloc)]
    headers += [(name, value) for name, value in _DEFAULT_HEADERS if name.decode().lower() not in given]
    headers += [(name.encode(), value.encode()) for name, value in exchange.headers.items()]
    if exchange.content is not None or exchange.method in ("POST", "PUT", "PATCH"):
        headers.append((b"Content-Length", str(len(exchange.content or b"")).encode()))
    return headers


async def _read_body(
    response: httpcore.Response, exchange: Exchange
) -> tuple[bytes, bool, int, httpx.Headers]:
    """The body up to the cap, decoded (gzip, deflate, br) through httpx only when the server encoded it.

    Kept whole only when an assertion reads it, within the check's lease; otherwise counted as it streams past,
    keeping only the excerpt's bytes, so a 100 MB page costs a check-http replica 64 KB at a time.
    """
    headers = httpx.Headers(response.headers)
    chunks: AsyncIterator[bytes] = response.aiter_stream()
    encoded = "content-encoding" in headers
    if encoded:
        chunks = httpx.Response(response.status, headers=headers, stream=_Body(response.stream)).aiter_bytes()
    if exchange.method == "HEAD":
        return b"", False, 0, headers
    cap = exchange.max_body_bytes
    keep = cap if exchange.keeps_body else min(cap, EXCERPT_BYTES)
    if exchange.keeps_body and exchange.lease is not None:
        await exchange.lease.hold(_bytes_to_reserve(headers, encoded, cap))
    body, size, truncated = bytearray(), 0, False
    async for chunk in chunks:
        if len(body) < keep:
            body += chunk[: keep - len(body)]
        size += len(chunk)
        if size > cap:
            size, truncated = cap, True
            break
    return bytes(body), truncated, size, headers


def _bytes_to_reserve(headers: httpx.Headers, encoded: bool, cap: int) -> int:
    """What the body may take once buffered and decoded to text: the declared length when the wire bytes are
    the body's (no content-encoding), else the cap; twice over, since judging decodes a copy to text."""
    declared = headers.get("content-length", "")
    size = min(cap, int(declared)) if declared.isdigit() and not encoded else cap
    return 2 * size


async def _send_to(address: IPAddress, exchange: Exchange, timer: PhaseTimer) -> HttpFacts:
    url = exchange.url
    host = str(address).encode()
    port = url.port or _DEFAULT_PORTS[url.scheme]
    sni = url.raw_host.decode("ascii")
    request = httpcore.Request(
        method=exchange.method.encode(),
        url=httpcore.URL(scheme=url.raw_scheme, host=host, port=port, target=url.raw_path),
        headers=_request_headers(exchange),
        content=exchange.content or b"",
        extensions={"trace": timer.trace, "sni_hostname": sni},
    )
    # One connection per hop: a fresh one every check, never one reused across hosts that share an IP.
    connection = httpcore.AsyncHTTPConnection(
        httpcore.Origin(url.raw_scheme, host, port),
        # only https needs it: building the default context (the CA store) costs a plain-http first check ~20 ms
        ssl_context=tls_context() if url.raw_scheme == b"https" else None,
        network_backend=_BACKEND,
    )
    try:
        with _httpx_errors(
            lambda: httpx.Request(
                exchange.method, url.copy_with(host=str(address)), extensions={"sni_hostname": sni}
            )
        ):
            response = await connection.handle_async_request(request)
            try:
                certificate = None
                if url.scheme == "https":
                    ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
                    certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
                body, truncated, size, headers = await _read_body(response, exchange)
            finally:
                await response.aclose()
    finally:
        await connection.aclose()
    return HttpFacts(
        status_code=response.status,
        url=url,
        address=str(address),
        http_version=response.extensions.get("http_version", b"HTTP/1.1").decode(),
        headers=headers,
        body=body,
        body_truncated=truncated,
        body_bytes=size,
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
