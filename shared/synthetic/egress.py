"""The only way out for a sandbox's browser: a SOCKS5 proxy in the function that vets each connection like an
HTTP check's target (shared.ssrf), after DNS, and connects to the vetted address itself.

Why a proxy in the function, and SOCKS5:
- Chromium's host-resolver rules match names, not what a name resolves to, so they cannot refuse a public name
  that points at 127.0.0.1; request interception (page.route) runs in the sandbox, where the script can undo it,
  and does not see every WebSocket or redirect.
- With `socks5://` Chromium sends the host name, not an address, so the proxy resolves it (resolve_target) and
  connects to exactly the address it approved: a second DNS answer (rebinding) is never used.
- Every TCP connection is one SOCKS request for one host and port, whatever rides on it (page loads,
  subresources, fetch/XHR, ws:// and wss://, HTTP and HTTPS alike); an HTTP forward proxy would have to parse and
  re-route keep-alive requests, which can name another host on the same connection.
Chromium is told not to bypass the proxy for loopback (`<-loopback>`), and Landlock lets the sandbox make TCP
connections to this proxy's port only, so neither Chromium nor the script's own Python can go around it.

One proxy per sandbox, so that what it refused is reported on that sandbox's check and no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct

from shared.ssrf import BlockedTarget, UnresolvableTarget, resolve_target

_CONNECT_TIMEOUT_SECONDS = 10.0
_HANDSHAKE_TIMEOUT_SECONDS = 10.0
_MAX_BLOCKED_KEPT = 20
_CHUNK = 64 * 1024
_OK, _NOT_ALLOWED, _HOST_UNREACHABLE, _REFUSED, _UNSUPPORTED = 0, 2, 4, 5, 7


class SocksError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str, int]:
    """The greeting and the CONNECT request; only 'no authentication' and CONNECT are spoken."""
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    if version != 5 or 0 not in methods:
        writer.write(b"\x05\xff")
        raise SocksError(_UNSUPPORTED)
    writer.write(b"\x05\x00")
    await writer.drain()
    return await _read_target(reader)


async def _read_target(reader: asyncio.StreamReader) -> tuple[str, int]:
    version, command, _, kind = await reader.readexactly(4)
    if kind == 1:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif kind == 4:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif kind == 3:
        (length,) = await reader.readexactly(1)
        try:
            host = (await reader.readexactly(length)).decode("ascii")  # Chromium sends IDNs as punycode
        except UnicodeDecodeError:
            raise SocksError(_HOST_UNREACHABLE) from None
    else:
        raise SocksError(_UNSUPPORTED)
    (port,) = struct.unpack("!H", await reader.readexactly(2))
    if version != 5 or command != 1:
        raise SocksError(_UNSUPPORTED)
    return host, port


def _reply(code: int) -> bytes:
    return bytes((5, code, 0, 1)) + b"\0\0\0\0" + b"\0\0"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof() if writer.can_write_eof() else writer.close()


class EgressProxy:
    """A SOCKS5 listener on 127.0.0.1 for one sandbox. `blocked` lists what it refused, as step messages."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> EgressProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._connections:
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            upstream = await self._open(reader, writer)
            if upstream is not None:
                up_reader, up_writer = upstream
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                up_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError):
            pass
        except asyncio.CancelledError:  # close(): the sandbox is gone; asyncio would log a cancelled handler
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _open(self, reader, writer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            host, port = await asyncio.wait_for(_read_request(reader, writer), _HANDSHAKE_TIMEOUT_SECONDS)
            upstream = await self._connect(host, port)
        except SocksError as refusal:
            writer.write(_reply(refusal.code))
            await writer.drain()
            return None
        writer.write(_reply(_OK))
        await writer.drain()
        return upstream

    async def _connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            addresses = await resolve_target(host, port)
        except BlockedTarget as refusal:
            if len(self.blocked) < _MAX_BLOCKED_KEPT:
                self.blocked.append(f"blocked: {refusal}")
            raise SocksError(_NOT_ALLOWED) from None
        except UnresolvableTarget:
            raise SocksError(_HOST_UNREACHABLE) from None
        for address in addresses:  # the vetted addresses themselves: no second lookup
            with contextlib.suppress(OSError, TimeoutError):
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(str(address), port), _CONNECT_TIMEOUT_SECONDS
                )
                with contextlib.suppress(OSError):
                    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return reader, writer
        raise SocksError(_REFUSED)
