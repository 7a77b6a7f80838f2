"""Loopback servers for the check tests: an HTTP(S) target with routes, certificates made to order, UDP peers."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"]


@dataclass
class Credential:
    """A certificate and its key, PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
            cert.write(self.cert_pem)
            key.write(self.key_pem)
            cert.flush()
            key.flush()
            context.load_cert_chain(cert.name, key.name)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _sans(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _pem(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Credential:
    return Credential(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@dataclass
class CertificateAuthority:
    """A CA the check's TLS context is told to trust, issuing leaf certificates with any validity."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    name: str = "Supercheck Test CA"

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(self.name))
            .issuer_name(_name(self.name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=3650))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(
        self, not_before: dt.datetime, not_after: dt.datetime, names: list[str] = LOOPBACK_NAMES
    ) -> Credential:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(_sans(names), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _pem(certificate, key)

    def issue_for_days(self, days_left: float, names: list[str] = LOOPBACK_NAMES) -> Credential:
        now = dt.datetime.now(dt.UTC)
        return self.issue(now - dt.timedelta(days=30), now + dt.timedelta(days=days_left), names)


# The one authority every test module trusts: the checks' TLS context is one per process (fetch.tls_context), and
# two authorities of the same name loaded into it make OpenSSL build chains on the wrong one ("certificate
# signature failure" in whichever module ran second).
TEST_AUTHORITY = CertificateAuthority()


def self_signed(days_left: float = 200, names: list[str] = LOOPBACK_NAMES) -> Credential:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(_name(names[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .add_extension(_sans(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(certificate, key)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RouteHandler(BaseHTTPRequestHandler):
    """Routes: /status/<code>, /redirect/<n>, /to?url=, /see-other, /echo, /json, /text?body=, /big?bytes=,
    /slow?seconds=, /gzip?body=, /chunked?bytes= (no Content-Length). Everything else: 200 'ok'."""

    protocol_version = "HTTP/1.1"
    server: RouteServer

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self) -> None:  # noqa: C901 -- one branch per test endpoint reads best as one route switch
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers), payload))
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        route = parts.path.strip("/").split("/")
        if route[0] == "status":
            self._reply(int(route[1]), f"status {route[1]}".encode())
        elif route[0] == "redirect":
            left = int(route[1])
            if left:
                self._reply(302, b"", {"Location": f"/redirect/{left - 1}"})
            else:
                self._reply(200, b"arrived")
        elif route[0] == "to":
            self._reply(302, b"", {"Location": query["url"]})
        elif route[0] == "see-other":
            self._reply(303, b"", {"Location": "/echo"})
        elif route[0] == "echo":
            echoed = {"method": self.command, "headers": dict(self.headers), "body": payload.decode()}
            self._reply(
                int(query.get("status", 200)),
                json.dumps(echoed).encode(),
                {"Content-Type": "application/json"},
            )
        elif route[0] == "json":
            document = {"status": "ok", "items": [{"id": 1}, {"id": 2}], "version": 3}
            self._reply(200, json.dumps(document).encode(), {"Content-Type": "application/json"})
        elif route[0] == "text":
            self._reply(200, query.get("body", "").encode())
        elif route[0] == "big":
            self._reply(200, b"x" * int(query["bytes"]) + b"THE-END")
        elif route[0] == "slow":
            time.sleep(float(query["seconds"]))
            self._reply(200, b"slow ok")
        elif route[0] == "chunked":
            self._chunked(int(query["bytes"]))
        elif route[0] == "gzip":
            self._reply(200, gzip.compress(query.get("body", "").encode()), {"Content-Encoding": "gzip"})
        else:
            self._reply(200, b"ok")

    def _chunked(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 65536
        while size > 0:
            part = chunk[: min(size, len(chunk))]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            size -= len(part)
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, *args) -> None:
        pass


class RouteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", credential: Credential | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), RouteHandler)
        self.seen: list[Seen] = []
        self.server_names: list[str | None] = []
        self.scheme = "http"
        if credential:
            context = credential.server_context()
            context.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
            self.scheme = "https"

    def finish_request(self, request, client_address) -> None:
        # The handshake happens here, in the request's own thread, so a client that rejects it stalls no one.
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        pass

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str = "/", host: str | None = None) -> str:
        host = host or self.server_address[0]
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.port}{path}"

    def start(self) -> RouteServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class UdpPeer:
    """A UDP socket on loopback that echoes datagrams back, or stays silent."""

    def __init__(self, host: str = "127.0.0.1", echo: bool = True) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.echo = echo
        self.received: list[bytes] = []
        self._running = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, peer = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            self.received.append(data)
            if self.echo:
                self.sock.sendto(data or b"pong", peer)

    def stop(self) -> None:
        self._running = False
        self.sock.close()


def closed_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing listens on: bound once to get a free number, then released."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False
