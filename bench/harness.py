"""What every benchmark sets up first: embedded PostgreSQL and Redis in a temporary folder, migrated."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openfaas.local.services import ManagedServer, embedded_postgres, embedded_redis
from shared.migrate import apply_migrations
from shared.security import generate_key
from shared.settings import reset_settings_cache


@dataclass
class BenchEnvironment:
    base: Path
    postgres: ManagedServer
    redis: ManagedServer

    @property
    def database_url(self) -> str:
        return self.postgres.url

    @property
    def redis_url(self) -> str:
        return self.redis.url


@contextmanager
def embedded_environment(name: str, **env: str) -> Iterator[BenchEnvironment]:
    """Fresh servers (fsync off: benchmark data need not survive a crash), their URLs and `env` exported."""
    base = Path(tempfile.mkdtemp(prefix=f"sc-bench-{name}-"))
    os.environ["SC_EMBEDDED_PG_FAST"] = "1"
    postgres = embedded_postgres(base / "postgres")
    redis_server = embedded_redis(base / "redis")
    try:
        os.environ.update(
            {
                "DATABASE_URL": postgres.url,
                "REDIS_URL": redis_server.url,
                "SC_CREDENTIAL_KEY": generate_key(),
                **env,
            }
        )
        reset_settings_cache()
        apply_migrations(postgres.url)
        yield BenchEnvironment(base, postgres, redis_server)
    finally:
        redis_server.stop()
        postgres.stop()
