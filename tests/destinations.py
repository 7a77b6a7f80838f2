"""Stand-ins for where alerts go: DNS answers scripted through shared.ssrf's resolver seam, and a loopback port
that counts the connections it gets. Used by tests/test_notify_targets.py."""

from __future__ import annotations

import socket
import threading

from shared import ssrf


class ScriptedDns:
    """Answers for made-up names, one list per lookup (the last repeats); other names go to the real resolver."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self._lock = threading.Lock()

    def answer(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = list(answers)

    async def __call__(self, host: str, port: int | None) -> list[str]:
        with self._lock:
            self.lookups.append(host)
            script = self.answers.get(host.lower())
            if script:
                return script.pop(0) if len(script) > 1 else script[0]
        return await ssrf.system_lookup(host, port)


class CountingListener:
    """A TCP port on 127.0.0.1 (and ::1, where it can) that counts the connections it accepts, and closes them."""

    def __init__(self) -> None:
        self.connections = 0
        self.sockets = [socket.create_server(("127.0.0.1", 0))]
        self.port = self.sockets[0].getsockname()[1]
        try:
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        except OSError:
            pass
        for listening in self.sockets:
            threading.Thread(target=self._accept, args=(listening,), daemon=True).start()

    def _accept(self, listening: socket.socket) -> None:
        while True:
            try:
                connection, _ = listening.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def stop(self) -> None:
        for listening in self.sockets:
            listening.close()
