"""A fast asyncio HTTP target on loopback for benchmarks: answers every request 200 and closes."""

from __future__ import annotations

import asyncio
import threading

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def start_in_thread(host: str = "127.0.0.1", answer=_answer) -> str:
    """Starts the target on a free port in a background thread; returns its URL (ending in '/').

    answer: the connection handler, for a target that answers otherwise (bench/check_memory.py's large bodies).
    """
    ready: list[str] = []
    started = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(answer, host, 0, backlog=4096))
        ready.append(f"http://{host}:{server.sockets[0].getsockname()[1]}/")
        started.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    started.wait(10)
    return ready[0]
