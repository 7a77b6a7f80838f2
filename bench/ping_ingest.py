"""Heartbeat pings per second through the local gateway, against the gateway's own /healthz and the ping
function's /health (the same hop, no database) measured in the same run, in alternating rounds.

Every ping is a real one (GET /function/ping/<token>): the token lookup, the rate limit and the retry mark, the
entry on sc:pings, and then, through the connector, aggregate writing the ping row, its run and result, and
finalizing the run. A ping is answered once it is queued, so after each round of pings the bench waits until
aggregate has written every one, and reports that rate too ("written"): the pings of the round over the time
from its start until the last was written. Tokens are spread so none passes its rate limit (60 a minute).

    PYTHONPATH=. .venv/bin/python bench/ping_ingest.py --seconds 5 --rounds 4

--pause-writers adds a round of pings through the gateway with the connector and aggregate stopped (SIGSTOP), so
that nothing is written while they are answered (they are written once both go on): what answering a ping costs
without writing one, to tell the two apart. It is a split of the cost, not a figure the system can sustain.

--lateness instead measures how late the aggregate sweep (its cron, once a minute) finds overdue heartbeats:
heartbeats of period 60 s and no grace are pinged spread over a minute, then left silent; each one's down
result is compared with its alarm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import embedded_environment  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import free_port  # noqa: E402


async def _create_heartbeats(count: int, config: dict) -> list[str]:
    """Heartbeat monitors made through the API's service; returns their ping paths (/function/ping/<token>)."""
    from urllib.parse import urlsplit

    from shared import db
    from shared.api.requests import MonitorCreate
    from shared.api.services import monitors

    project_id = (await _one("select id from projects where is_default"))["id"]
    paths = []
    for index in range(count):
        spec = MonitorCreate.model_validate({"name": f"hb-{index}", "type": "heartbeat", "config": config})
        row = await monitors.create_monitor(project_id, None, spec)
        shown = monitors.monitor_out(await monitors.get_monitor(project_id, row["id"]))
        paths.append(urlsplit(shown.ping_url).path)
    await db.close_pool()
    return paths


async def _one(query: str) -> dict:
    from shared import db

    async with db.transaction() as conn:
        return await (await conn.execute(query)).fetchone()


class Client:
    """A lean HTTP/1.1 keep-alive client: the load generator shares two cores with what it measures, so it
    spends as little as it can per request (httpx would cost more than the gateway)."""

    def __init__(self, port: int):
        self.port = port

    async def _connection(self):
        return await asyncio.open_connection("127.0.0.1", self.port)

    @staticmethod
    async def _request(reader, writer, path: str) -> int:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, chunked = 0, False
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line.startswith(b"transfer-encoding:") and b"chunked" in line:
                chunked = True
        if chunked:  # the gateway streams what it proxies
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")
        elif length:
            await reader.readexactly(length)
        return status

    async def run(self, paths: list[str], seconds: float, connections: int) -> tuple[int, dict[int, int]]:
        """Requests answered in `seconds` by `connections` looping connections, and a count per status."""
        statuses: dict[int, int] = {}
        deadline = time.monotonic() + seconds
        cursor = iter(range(10**12))

        async def loop() -> None:
            reader, writer = await self._connection()
            try:
                while time.monotonic() < deadline:
                    path = paths[next(cursor) % len(paths)]
                    status = await self._request(reader, writer, path)
                    statuses[status] = statuses.get(status, 0) + 1
            finally:
                writer.close()

        await asyncio.gather(*(loop() for _ in range(connections)))
        return statuses.get(200, 0), statuses

    async def run_each(self, paths: list[str], connections: int) -> None:
        """Every path requested once, over `connections` connections."""
        pending = iter(paths)

        async def loop() -> None:
            reader, writer = await self._connection()
            try:
                for path in pending:
                    await self._request(reader, writer, path)
            finally:
                writer.close()

        await asyncio.gather(*(loop() for _ in range(connections)))


LABELS = (
    ("healthz", "gateway /healthz"),
    ("health", "gateway -> ping /health"),
    ("ping", "gateway -> ping (real pings)"),
    ("ping_written", "  ... written by aggregate"),
    ("ping_unwritten", "gateway -> ping, writers paused"),
    ("direct_health", "ping /health, no gateway"),
    ("direct_ping", "real pings, no gateway"),
    ("direct_ping_written", "  ... written by aggregate"),
)
WRITTEN = {"ping": "ping_written", "direct_ping": "direct_ping_written"}


def _stored_pings() -> int:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        return conn.execute("select count(*) from heartbeat_pings").fetchone()[0]


def _wait_written(redis_url: str, within_seconds: float = 300) -> None:
    """Until aggregate has acknowledged every entry of sc:pings (each written before it is acknowledged)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + within_seconds
    try:
        while time.monotonic() < deadline:
            newest = client.xrevrange("sc:pings", count=1)
            groups = [g for g in client.xinfo_groups("sc:pings") if g["name"] == "sc-connector"]
            if not newest or (
                groups and int(groups[0]["pending"]) == 0 and groups[0]["last-delivered-id"] == newest[0][0]
            ):
                return
            time.sleep(0.01)
        raise SystemExit("the pings were not all written within 300 s")
    finally:
        client.close()


@contextlib.contextmanager
def _writers_paused(stack: LocalStack, paused: bool):
    """The connector and aggregate stopped while the block runs, so that the pings it sends are only answered."""
    writers = [stack.children[name] for name in ("connector", "aggregate")] if paused else []
    for writer in writers:
        writer.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for writer in writers:
            writer.signal(signal.SIGCONT)


def throughput(args) -> None:
    with embedded_environment("ping") as env:
        stack = LocalStack(
            env={"SC_ALLOW_ANONYMOUS_LOCAL": "true"},
            log_dir=env.base / "logs",
            gateway_port=free_port(),
            with_cron=False,
        ).start()
        try:
            paths = asyncio.run(
                _create_heartbeats(args.monitors, {"periodSeconds": 3600, "graceSeconds": 600})
            )
            client, direct = Client(stack.gateway_port), Client(stack.children["ping"].port)
            # warm every hop (connections, pools, imports) and the ping function's token cache, as a stack
            # that has run a while has it: every token pinged once (one of its 60 pings a minute)
            asyncio.run(client.run(paths[:50], 1.0, 8))
            asyncio.run(client.run_each(paths, args.connections))
            _wait_written(env.redis_url)
            figures: dict[str, list[float]] = {name: [] for name, _ in LABELS}
            unexpected: dict[str, dict[int, int]] = {}
            # each round uses other tokens, so none passes 60 pings a minute
            per_round = len(paths) // args.rounds
            for round_index in range(args.rounds):
                tokens = paths[round_index * per_round : (round_index + 1) * per_round]
                share = len(tokens) // (3 if args.pause_writers else 2)
                kinds = [
                    ("healthz", client, ["/healthz"]),
                    ("health", client, ["/function/ping/health"]),
                    ("ping", client, tokens[:share]),
                    ("direct_health", direct, ["/health"]),
                    (
                        "direct_ping",
                        direct,
                        [path.removeprefix("/function/ping") for path in tokens[share : 2 * share]],
                    ),
                ]
                if args.pause_writers:
                    kinds.append(("ping_unwritten", client, tokens[2 * share :]))
                for name, via, targets in kinds:
                    stored_before = _stored_pings() if name in WRITTEN else 0
                    started = time.monotonic()
                    paused = name == "ping_unwritten"
                    with _writers_paused(stack, paused):
                        answered, statuses = asyncio.run(via.run(targets, args.seconds, args.connections))
                    if paused:
                        _wait_written(env.redis_url)
                    figures[name].append(answered / args.seconds)
                    if name in WRITTEN:
                        _wait_written(env.redis_url)
                        written = _stored_pings() - stored_before
                        figures[WRITTEN[name]].append(written / (time.monotonic() - started))
                    for status, count in statuses.items():
                        if status != 200:
                            of_kind = unexpected.setdefault(name, {})
                            of_kind[status] = of_kind.get(status, 0) + count
            _report(figures, unexpected, args)
        finally:
            stack.stop()


def _report(figures: dict[str, list[float]], unexpected: dict[str, dict[int, int]], args) -> None:
    median = {name: statistics.median(values) for name, values in figures.items() if values}
    print(
        f"rounds {args.rounds} x {args.seconds:g} s, {args.connections} connections, {args.monitors} tokens,"
        " the whole stack running"
    )
    for name, label in LABELS:
        if not figures[name]:
            continue
        rounds = ", ".join(f"{value:,.0f}" for value in figures[name])
        print(f"{label:30} {median[name]:8,.0f} /s  (rounds: {rounds})")
    print(f"ping / gateway /healthz: {median['ping'] / median['healthz']:.2f}")
    print(f"ping / ping /health:     {median['ping'] / median['health']:.2f}")
    print(f"  written / ping /health: {median['ping_written'] / median['health']:.2f}")
    if "ping_unwritten" in median:
        print(f"  writers paused / ping /health: {median['ping_unwritten'] / median['health']:.2f}")
    print(f"direct, ping / /health:  {median['direct_ping'] / median['direct_health']:.2f}")
    print(f"non-200 answers, by round: {unexpected or 'none'}")


def lateness(args) -> None:
    """Alarms spread over a minute, found by the once-a-minute sweep: how late each was found."""
    with embedded_environment("ping-late") as env:
        stack = LocalStack(
            env={"SC_ALLOW_ANONYMOUS_LOCAL": "true"},
            log_dir=env.base / "logs",
            gateway_port=free_port(),
            with_cron=True,
        ).start()
        try:
            paths = asyncio.run(
                _create_heartbeats(args.late_monitors, {"periodSeconds": 60, "graceSeconds": 0})
            )
            client = Client(stack.gateway_port)
            gap = 60.0 / len(paths)
            for path in paths:  # alarms one gap apart across a minute
                asyncio.run(client.run([path], 0.001, 1))
                time.sleep(gap)
            delays = asyncio.run(_wait_for_down_results(len(paths), within_seconds=200))
        finally:
            stack.stop()
    print(f"{len(delays)} overdue heartbeats, alarms spread over 60 s, aggregate's cron '* * * * *'")
    print(
        f"found late by: min {min(delays):.1f} s, median {statistics.median(delays):.1f} s, "
        f"max {max(delays):.1f} s (bound: one sweep interval, 60 s, plus the sweep's own time)"
    )


async def _wait_for_down_results(count: int, within_seconds: float) -> list[float]:
    from shared import db

    deadline = time.monotonic() + within_seconds
    rows: list[dict] = []
    while time.monotonic() < deadline:
        async with db.transaction() as conn:
            rows = await (
                await conn.execute(
                    """select distinct on (monitor_id) checked_at, details ->> 'alarmAt' as alarm_at
                       from monitor_results where status = 'down' order by monitor_id, checked_at"""
                )
            ).fetchall()
        if len(rows) >= count:
            break
        await asyncio.sleep(1)
    await db.close_pool()
    return [(row["checked_at"] - datetime.fromisoformat(row["alarm_at"])).total_seconds() for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--monitors",
        type=int,
        default=9600,
        help="heartbeat tokens the pings spread over; each round of pings gets monitors / rounds / 2 of them (/ 3"
        " with --pause-writers), and one pinged more than 60 times a minute is answered 429, which is not counted",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--pause-writers", action="store_true", help="add a round with connector and aggregate paused"
    )
    parser.add_argument("--lateness", action="store_true", help="measure the sweep's lateness instead")
    parser.add_argument("--late-monitors", type=int, default=12)
    args = parser.parse_args()
    lateness(args) if args.lateness else throughput(args)


if __name__ == "__main__":
    main()
