"""Whether each of the connector's loops is alive: their supervision (a loop that dies is restarted), the
health endpoint that reports them (shared/rules/connector_health.py gives the verdict), and the heartbeat that
tells the API and the metrics function the same, with whether the check functions answer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.pipeline import routing
from shared.pipeline.heartbeats import ConnectorHeartbeat, probe_check_functions, write_heartbeat
from shared.rules.connector_health import LoopCondition, LoopView, judge_health

if TYPE_CHECKING:
    from openfaas.connector.connector import Connector

log = logging.getLogger("connector")

# How long the health endpoint waits for a request line: a client that sends nothing does not hold it.
REQUEST_READ_SECONDS = 5.0


@dataclass
class LoopState:
    """One loop's condition as its own iterations report it."""

    name: str
    condition: LoopCondition = "starting"
    restarts: int = 0
    last_error: str | None = None
    last_iteration_at: float = field(default=0.0)  # wall clock, for people reading /health

    def entered(self) -> None:
        if self.condition == "starting":
            self.condition = "running"

    def iterated(self) -> None:
        self.condition = "running"
        self.last_iteration_at = time.time()

    def redis_unavailable(self, error: BaseException) -> None:
        self.condition = "redis-unavailable"
        self.last_error = f"{type(error).__name__}: {error}"[:300]

    def crashed(self, error: BaseException) -> None:
        self.condition = "crashed"
        self.restarts += 1
        self.last_error = f"{type(error).__name__}: {error}"[:300]

    def view(self) -> LoopView:
        return LoopView(self.name, self.condition)


async def supervise(
    state: LoopState, body: Callable[[LoopState], Awaitable[None]], restart_after_seconds: float
) -> None:
    """Runs a loop forever: one that raises is reported crashed and started again, so no exception silences it."""
    try:
        while True:
            try:
                await body(state)
            except Exception as error:  # anything: a dead loop would otherwise go unnoticed
                state.crashed(error)
                log.exception("loop %s died (restart %d)", state.name, state.restarts)
                await asyncio.sleep(restart_after_seconds)
    finally:
        state.condition = "stopped"


def health(connector: Connector) -> tuple[int, dict]:
    loops = list(connector.loops.values())
    status, verdict = judge_health([loop.view() for loop in loops])
    body = {
        "status": verdict,
        "loops": {
            loop.name: {
                "condition": loop.condition,
                "restarts": loop.restarts,
                "lastError": loop.last_error,
                "lastIterationAt": loop.last_iteration_at,
            }
            for loop in loops
        },
        "streams": connector.config.streams,
        **connector.stats.__dict__,
    }
    return status, body


async def beat(connector: Connector, every_seconds: float) -> None:
    """One heartbeat per location the connector delivers jobs for, each into that location's job Redis; raises the
    first Redis error once every location was tried, so one unreachable region costs the others nothing."""
    by_location = connector.job_streams_by_location()
    functions = [routing.function_for_stream(s) for names in by_location.values() for s in names]
    answered = await probe_check_functions(
        connector.http,
        connector.config.gateway_url,
        [function for function in functions if function],
        connector.config.probe_timeout_seconds,
    )
    _, verdict = judge_health([loop.view() for loop in connector.loops.values()])
    written_at = datetime.now(UTC)
    heartbeats = [
        ConnectorHeartbeat(
            location=location,
            worker_location=connector.config.worker_location,
            serves=list(by_location),
            consumer=connector.config.consumer,
            written_at=written_at,
            # probes take up to their timeout before each write
            interval_seconds=every_seconds + connector.config.probe_timeout_seconds,
            connector_status=verdict,
            loops={loop.name: loop.condition for loop in connector.loops.values()},
            check_functions=answered,
        )
        for location in by_location
    ]
    outcomes = await asyncio.gather(
        *(
            write_heartbeat(connector.redis_for(by_location[heartbeat.location][0]), heartbeat)
            for heartbeat in heartbeats
        ),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


_REASONS = {200: b"OK", 503: b"Service Unavailable"}


async def serve_health(connector: Connector, host: str, port: int) -> asyncio.base_events.Server:
    """GET /health from the loops' reported state: never waits on Redis, so it answers while Redis is stalled."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readline(), REQUEST_READ_SECONDS)
            status, body = health(connector)
            payload = json.dumps(body).encode()
            writer.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (status, _REASONS[status], len(payload), payload)
            )
            await asyncio.wait_for(writer.drain(), REQUEST_READ_SECONDS)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
