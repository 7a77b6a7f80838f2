"""A TCP proxy in front of a real Redis that a test turns bad: a hung Redis, or a server whose replies make no
sense to the client (what kills a loop that trusts them). Used by tests/test_connector_health.py."""

from __future__ import annotations

import socket
import threading
import time
from typing import Literal
from urllib.parse import urlsplit

Mode = Literal["pass", "stall", "garbage"]


def complete_commands(buffer: bytearray) -> int:
    """How many whole RESP commands (arrays of bulk strings, as clients send them) start the buffer; removes them."""
    count, position = 0, 0
    while True:
        end = buffer.find(b"\r\n", position)
        if end < 0 or buffer[position : position + 1] != b"*":
            break
        parts, cursor = int(buffer[position + 1 : end]), end + 2
        for _ in range(parts):
            line_end = buffer.find(b"\r\n", cursor)
            if line_end < 0:
                break
            cursor = line_end + 2 + int(buffer[cursor + 1 : line_end]) + 2
            if cursor > len(buffer):
                break
        else:
            count, position = count + 1, cursor
            continue
        break
    del buffer[:position]
    return count


class RedisProxy:
    """'pass' forwards both ways; 'stall' forwards nothing (Redis hung: the client's reads time out);
    'garbage' answers every command with the integer 1, which no stream command returns. Changing the mode
    drops the open connections, so the client reconnects into the new mode."""

    def __init__(self, upstream_url: str) -> None:
        upstream = urlsplit(upstream_url)
        self.upstream = (upstream.hostname, upstream.port)
        self.database = upstream.path or "/0"
        self.mode: Mode = "pass"
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.listener.getsockname()[1]}{self.database}"

    def set_mode(self, mode: Mode) -> None:
        with self.lock:
            self.mode = mode
            doomed, self.sockets = self.sockets, []
        for sock in doomed:
            _close(sock)

    def stop(self) -> None:
        _close(self.listener)
        self.set_mode("pass")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._from_client, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _hold_while_stalled(self) -> None:
        while self.mode == "stall":
            time.sleep(0.05)

    def _from_client(self, client: socket.socket, upstream: socket.socket) -> None:
        pending = bytearray()
        while data := _recv(client):
            self._hold_while_stalled()
            if self.mode == "garbage":
                pending += data
                _send(client, b":1\r\n" * complete_commands(pending))
            else:
                _send(upstream, data)
        _close(upstream)

    def _pump(self, upstream: socket.socket, client: socket.socket) -> None:
        while data := _recv(upstream):
            self._hold_while_stalled()
            if self.mode == "pass":
                _send(client, data)
        _close(client)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
