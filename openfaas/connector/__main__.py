"""Run the connector: `python -m openfaas.connector` (configuration from the environment, see README)."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from openfaas.connector.connector import Connector, ConnectorConfig
from openfaas.connector.liveness import serve_health
from shared import streams
from shared.pipeline import routing
from shared.settings import get_settings


def config_from_env() -> ConnectorConfig:
    settings = get_settings()
    chosen = routing.streams_for_worker(
        settings.worker_location, settings.locations, include_pipeline=settings.is_primary_connector
    )
    if not settings.connector_read_jobs:
        # a primary whose checks all run in regional installs
        chosen = [stream for stream in chosen if not streams.parse_job_stream(stream)]
    main_redis = settings.require_redis_url()
    return ConnectorConfig(
        redis_url=main_redis,
        gateway_url=settings.gateway_url,
        streams=chosen,
        stream_redis_urls={
            s: streams.redis_url_for(s) for s in chosen if streams.redis_url_for(s) != main_redis
        },
        batch_size=settings.connector_batch_size,
        concurrency=settings.connector_concurrency,
        max_deliveries=settings.connector_max_deliveries,
        idle_reclaim_ms=settings.connector_idle_reclaim_ms,
        internal_token=settings.require_internal_token(),  # unsigned deliveries would all be refused
        heartbeat_seconds=settings.connector_heartbeat_seconds or None,
        worker_location=settings.worker_location,
    )


async def main() -> None:
    logging.basicConfig(
        level=get_settings().log_level, format="%(asctime)s connector %(levelname)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    connector = Connector(config_from_env())
    health_port = get_settings().connector_health_port
    host = get_settings().connector_health_host
    server = await serve_health(connector, host, health_port) if health_port else None
    logging.getLogger("connector").info(
        "reading %d stream(s): %s", len(connector.config.streams), ", ".join(connector.config.streams)
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(connector.run_forever())
    await stop.wait()
    runner.cancel()
    if server:
        server.close()
    await connector.close()


if __name__ == "__main__":
    uvloop.run(main())  # libuv's loop: the connector moves every job and result, and its loop is its CPU
