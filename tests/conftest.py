"""Fixtures that start real infrastructure on free loopback ports: PostgreSQL, Redis, and the local stack."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import psycopg
import pytest
import redis

from openfaas.local.runtime import LocalStack, new_internal_token
from openfaas.local.services import ManagedServer, embedded_postgres, embedded_redis, free_port
from shared.migrate import apply_migrations
from shared.security import generate_key
from shared.settings import reset_settings_cache
from tests.factories import SYNTHETIC_BUCKET
from tests.servers import LoopbackHttpServer


def pytest_configure(config: pytest.Config) -> None:
    """A temporary root of this run's own. pytest's default root is shared by every run of the same user, and
    each new run deletes all but the three newest runs' folders there, so concurrent runs (two checkouts, CI
    next to a developer) would delete each other's Postgres data mid-run."""
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="supercheck-tests-")
        config._supercheck_basetemp = config.option.basetemp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    own = getattr(session.config, "_supercheck_basetemp", None)
    if own and exitstatus == 0:  # a failed run's folder stays, with its servers' logs
        shutil.rmtree(own, ignore_errors=True)


KEPT_TABLES = {"projects", "regions", "schema_migrations"}


@dataclass
class Infra:
    postgres: ManagedServer
    redis_server: ManagedServer

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.redis_server.url

    def sql(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


class AsyncRunner:
    """One event loop for the whole session, so per-loop connection pools live as long as the tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 120):
        future: Future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        from shared.db import close_pool
        from shared.redis import close_redis

        async def shutdown():
            await close_pool()
            await close_redis()
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per process; a test that changes the environment resets them after it, and
    this makes sure no test leaves its environment cached for the next one."""
    yield
    reset_settings_cache()


@pytest.fixture(scope="session")
def infra(tmp_path_factory) -> Iterator[Infra]:
    base = tmp_path_factory.mktemp("infra")
    os.environ["SC_EMBEDDED_PG_FAST"] = "1"  # fsync off: test data need not survive a power cut
    postgres = embedded_postgres(base / "postgres")
    redis_server = embedded_redis(base / "redis")
    os.environ.update(
        {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "SC_CREDENTIAL_KEY": os.environ.get("SC_TEST_CREDENTIAL_KEY") or generate_key(),
            # shared by this process and every stack it starts: tests sign deliveries as the connector does
            "SC_INTERNAL_TOKEN": new_internal_token(),
            "DISPATCH_SWEEP_AFTER_SECONDS": "2",
        }
    )
    reset_settings_cache()
    apply_migrations(postgres.url)
    yield Infra(postgres, redis_server)
    redis_server.stop()
    postgres.stop()


@pytest.fixture(scope="session")
def aio(infra) -> Iterator[AsyncRunner]:
    runner = AsyncRunner()
    yield runner
    runner.close()


@pytest.fixture
def clean(infra) -> Infra:
    """Empties every table but the seeded ones, and every Redis key, before the test."""
    tables = [row[0] for row in infra.sql("select tablename from pg_tables where schemaname = 'public'")]
    wipe = [t for t in tables if t not in KEPT_TABLES]
    if wipe:
        _truncate(infra, wipe)
    infra.redis().flushall()
    return infra


def _truncate(infra: Infra, tables: list[str], attempts: int = 5) -> None:
    """A module's stack may still be working (its connector redelivering, a sweep): TRUNCATE locks table after
    table, so it can deadlock with a transaction locking them in another order. Postgres then aborts one side;
    when that is the TRUNCATE, it is simply run again."""
    for attempt in range(attempts):
        try:
            infra.sql(f"truncate {', '.join(tables)} cascade")
            return
        except psycopg.errors.DeadlockDetected:
            if attempt == attempts - 1:
                raise


@pytest.fixture(scope="module")
def stack(infra, tmp_path_factory) -> Iterator[LocalStack]:
    """The whole local runtime (gateway, every stack.yml function, connector) on a free port, without cron."""
    local = LocalStack(
        env={
            "ALLOW_INTERNAL_TARGETS": "true",
            "CONNECTOR_IDLE_RECLAIM_MS": "3000",
            "SC_ALLOW_ANONYMOUS_LOCAL": "true",
        },
        log_dir=tmp_path_factory.mktemp("stack-logs"),
        gateway_port=free_port(),
        with_cron=False,
    ).start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def s3(infra) -> Iterator:
    """Synthetic artifacts' S3: moto in server mode on a free loopback port, the function's S3 settings on it."""
    import boto3  # here: only the synthetic modules need S3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    settings = {
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "S3_BUCKET": SYNTHETIC_BUCKET,
        "S3_ACCESS_KEY_ID": "test-access-key",
        "S3_SECRET_ACCESS_KEY": "test-secret-key",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    reset_settings_cache()
    client = boto3.client(
        "s3",
        endpoint_url=settings["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test-access-key",
        aws_secret_access_key="test-secret-key",
    )
    client.create_bucket(Bucket=SYNTHETIC_BUCKET)
    yield client
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    reset_settings_cache()
    server.stop()


@pytest.fixture
def http_target() -> Iterator[LoopbackHttpServer]:
    server = LoopbackHttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[LoopbackHttpServer]:
    server = LoopbackHttpServer(body=b"{}").start()
    yield server
    server.stop()


def _internal_targets(monkeypatch, allowed: bool) -> Iterator[None]:
    # Set in the environment, not only in the settings, so processes a test starts inherit it too.
    monkeypatch.setenv("ALLOW_INTERNAL_TARGETS", "true" if allowed else "false")
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()


@pytest.fixture
def internal_targets(monkeypatch) -> Iterator[None]:
    """Lets in-process checks and saves reach loopback targets for one test (ALLOW_INTERNAL_TARGETS)."""
    yield from _internal_targets(monkeypatch, allowed=True)


@pytest.fixture
def internal_targets_blocked(monkeypatch) -> Iterator[None]:
    """Internal targets refused, as by default, whatever the environment the tests were started in says."""
    yield from _internal_targets(monkeypatch, allowed=False)
