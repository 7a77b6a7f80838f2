"""The one place configuration is read: environment variables, or OpenFaaS secret files for secrets.
Used by everything; tests/test_architecture.py fails on an environment read anywhere else."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, IPvAnyAddress, field_validator

_NUMBER = re.compile(r"\d+(\.\d+)?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
SECRETS_DIR = Path(os.environ.get("SC_SECRETS_DIR", "/var/openfaas/secrets"))
DEFAULT_LOCATIONS = ("us-east", "eu-central", "asia-pacific")


def read_secret(name: str, env_var: str) -> str | None:
    """OpenFaaS mounts secrets as files; a file wins over the environment so that nothing secret need sit in env."""
    path = SECRETS_DIR / name
    if path.is_file():
        return path.read_text().strip()
    return os.environ.get(env_var) or None


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Settings(BaseModel):
    database_url: str | None
    redis_url: str | None
    gateway_url: str = "http://127.0.0.1:8080"
    worker_location: str | None = None
    locations: tuple[str, ...] = DEFAULT_LOCATIONS
    allow_internal_targets: bool = False
    credential_keys: str | None = Field(default=None, repr=False)
    # Keys the HMAC over connector deliveries and the API's calls to functions (shared/internal_auth.py).
    internal_token: str | None = Field(default=None, repr=False)
    # The local address checks send from (e.g. a region's egress IP on a multi-homed host); None lets the OS pick.
    source_address: IPvAnyAddress | None = None
    # Optional: a location's jobs live in that region's own Redis (JSON object location -> URL).
    region_redis_urls: dict[str, str] = Field(default_factory=dict, repr=False)
    # Optional: the gateway of a location's region (JSON object location -> URL), where the API sends a trial
    # run at that location (`supercheck test --location`); a location not named runs on GATEWAY_URL.
    region_gateway_urls: dict[str, str] = Field(default_factory=dict)
    public_base_url: str = "http://127.0.0.1:8080"
    # Jobs in flight per function = batch size x concurrency, and a job dispatched ahead holds its POST until its
    # slot: at 1,000 checks/s with a 1 s lookahead about 1,000 are in flight (bench/README.md, issue 23).
    connector_batch_size: int = Field(default=200, ge=1, le=1000)
    connector_concurrency: int = Field(default=8, ge=1, le=64)
    connector_max_deliveries: int = Field(default=5, ge=1, le=100)
    connector_idle_reclaim_ms: int = Field(default=60_000, ge=100)
    check_concurrency: int = Field(default=200, ge=1, le=5000)
    # A send claimed longer ago than this belongs to a dead alert function; at least the function's exec_timeout
    alert_claim_expiry_seconds: int = Field(default=120, ge=1, le=3600)
    # Threads of the one pool every DNS lookup of a check runs in (shared.ssrf.dns_executor), apart from the
    # default pool the rest of the process uses.
    dns_lookup_threads: int = Field(default=16, ge=1, le=256)
    # Response bodies a check process buffers at once, for keyword and JSON path assertions (checks/body_budget.py)
    check_body_buffer_mb: int = Field(default=256, ge=1, le=65536)
    run_deadline_grace_seconds: int = Field(default=30, ge=0)
    dispatch_sweep_after_seconds: int = Field(default=30, ge=1)
    # schedule claims runs due up to this far ahead and the check waits for the due time: a tick's interval and
    # the trip through Redis and the connector are spent before the slot, not added to every check's lag
    schedule_lookahead_seconds: float = Field(default=1.0, ge=0, le=30)
    # Synthetic tests: the browser, the sandbox's limits, and S3-compatible storage for their artifacts.
    playwright_chromium_path: str | None = None
    synthetic_concurrency: int = Field(default=2, ge=1, le=32)
    synthetic_memory_limit_mb: int = Field(default=1536, ge=512, le=65536)
    # Where the function runs as root, each sandbox takes a uid from [this, this + 1000) that no account owns.
    synthetic_sandbox_uid: int = Field(default=59000, ge=1000, le=2**31 - 2000)
    # Run scripts even where no isolation from the function is available (shared.synthetic.isolation).
    synthetic_allow_unisolated: bool = False
    # The trace's screencast filmstrip (DOM snapshots are always kept): it slows a journey by about half.
    synthetic_trace_screenshots: bool = False
    s3_endpoint_url: str | None = None
    s3_public_url: str | None = None  # base of the report links, when readers reach S3 by another address
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = Field(default=None, repr=False)
    s3_secret_access_key: str | None = Field(default=None, repr=False)
    playwright_browsers_path: str | None = None  # where `playwright install` puts its own Chromium
    # The local runtime (`make run`) only: the seed's unauthenticated curl examples then work locally.
    allow_anonymous_local: bool = False
    bootstrap_api_key: str | None = Field(default=None, repr=False)  # pins the first key (scripts, CI)
    sse_keepalive_seconds: float = Field(default=15.0, gt=0, le=300)
    # A cron call to schedule ticks through this window (e.g. 55 under a once-a-minute cron); 0: one tick.
    schedule_window_seconds: float = Field(default=0.0, ge=0, le=300)
    # The of-watchdog's exec_timeout (stack.yml sets it per function, and the function's process inherits it):
    # a check batch answers before it with the results it has.
    exec_timeout_seconds: float = Field(default=120.0, gt=0)
    # The connector: a primary also feeds aggregate and alert (default: when it reads every location).
    connector_primary: bool | None = None
    connector_read_jobs: bool = True  # false: a primary whose checks all run in regional installs
    connector_health_host: str = "0.0.0.0"
    connector_health_port: int = Field(default=8081, ge=0, le=65535)  # 0: no health endpoint
    # Seconds between the connector's heartbeats (shared/pipeline/heartbeats.py); 0: none written.
    connector_heartbeat_seconds: float = Field(default=5.0, ge=0, le=300)
    log_level: str = "INFO"
    # The metrics function's operator token (secret `metrics-token`): every project's monitors and the pipeline.
    metrics_token: str | None = Field(default=None, repr=False)
    # A render slower than this is served from the previous one while the next is made (shared/metrics/app.py)...
    metrics_render_budget_seconds: float = Field(default=1.0, ge=0, le=60)
    # ... but never one older than this: a scrape then waits for a fresh render.
    metrics_max_stale_seconds: float = Field(default=120.0, ge=0, le=3600)
    # Pings one heartbeat token may send per minute (the ping function answers 429 beyond; a retry counts too).
    ping_rate_limit_per_minute: int = Field(default=60, ge=1, le=100_000)
    # Names this process's database connections (pg_stat_activity's application_name, which the metrics function
    # groups connection use by): the function's name, which stack.yml and the local runtime set.
    function_name: str = Field(default="supercheck", min_length=1, max_length=63)
    # The seed's MONITOR_* retention variables as set; shared.rules.retention.RetentionConfig validates them.
    monitor_variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("exec_timeout_seconds", mode="before")
    @classmethod
    def _go_duration(cls, value: object) -> object:
        """The watchdog's Go durations (120s, 2m, 1m30s, 500ms); a bare number is seconds."""
        if not isinstance(value, str) or _NUMBER.fullmatch(value.strip()):
            return value
        parts = _DURATION_PART.findall(value.strip())
        if not parts or "".join(number + unit for number, unit in parts) != value.strip():
            raise ValueError(f"'{value}' is not a duration such as 120s or 2m")
        return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)

    @field_validator("worker_location")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        locations = tuple(
            x.strip() for x in env.get("SC_LOCATIONS", ",".join(DEFAULT_LOCATIONS)).split(",") if x.strip()
        )
        values: dict = {
            "database_url": read_secret("database-url", "DATABASE_URL"),
            "redis_url": read_secret("redis-url", "REDIS_URL"),
            "credential_keys": read_secret("credential-key", "SC_CREDENTIAL_KEY"),
            "internal_token": read_secret("internal-token", "SC_INTERNAL_TOKEN"),
            "metrics_token": read_secret("metrics-token", "SC_METRICS_TOKEN"),
            "worker_location": env.get("WORKER_LOCATION"),
            "locations": locations,
            "allow_internal_targets": _flag("ALLOW_INTERNAL_TARGETS"),
            "synthetic_allow_unisolated": _flag("SYNTHETIC_ALLOW_UNISOLATED"),
            "synthetic_trace_screenshots": _flag("SYNTHETIC_TRACE_SCREENSHOTS"),
            "region_redis_urls": json.loads(read_secret("region-redis-urls", "SC_REGION_REDIS_URLS") or "{}"),
            "region_gateway_urls": json.loads(env.get("SC_REGION_GATEWAY_URLS") or "{}"),
            "s3_access_key_id": read_secret("s3-access-key-id", "S3_ACCESS_KEY_ID"),
            "s3_secret_access_key": read_secret("s3-secret-access-key", "S3_SECRET_ACCESS_KEY"),
            "allow_anonymous_local": _flag("SC_ALLOW_ANONYMOUS_LOCAL"),
            "connector_read_jobs": _flag("CONNECTOR_READ_JOBS", default=True),
            "monitor_variables": {name: value for name, value in env.items() if name.startswith("MONITOR_")},
        }
        if env.get("CONNECTOR_PRIMARY"):
            values["connector_primary"] = _flag("CONNECTOR_PRIMARY")
        optional = {
            "gateway_url": "GATEWAY_URL",
            "source_address": "SC_SOURCE_ADDRESS",
            "public_base_url": "SC_PUBLIC_BASE_URL",
            "connector_batch_size": "CONNECTOR_BATCH_SIZE",
            "connector_concurrency": "CONNECTOR_CONCURRENCY",
            "connector_max_deliveries": "CONNECTOR_MAX_DELIVERIES",
            "connector_idle_reclaim_ms": "CONNECTOR_IDLE_RECLAIM_MS",
            "check_concurrency": "CHECK_CONCURRENCY",
            "alert_claim_expiry_seconds": "ALERT_CLAIM_EXPIRY_SECONDS",
            "dns_lookup_threads": "DNS_LOOKUP_THREADS",
            "check_body_buffer_mb": "CHECK_BODY_BUFFER_MB",
            "run_deadline_grace_seconds": "RUN_DEADLINE_GRACE_SECONDS",
            "dispatch_sweep_after_seconds": "DISPATCH_SWEEP_AFTER_SECONDS",
            "schedule_lookahead_seconds": "SCHEDULE_LOOKAHEAD_SECONDS",
            "playwright_chromium_path": "PLAYWRIGHT_CHROMIUM_PATH",
            "synthetic_concurrency": "SYNTHETIC_CONCURRENCY",
            "synthetic_memory_limit_mb": "SYNTHETIC_MEMORY_LIMIT_MB",
            "synthetic_sandbox_uid": "SYNTHETIC_SANDBOX_UID",
            "s3_endpoint_url": "S3_ENDPOINT_URL",
            "s3_public_url": "S3_PUBLIC_URL",
            "s3_bucket": "S3_BUCKET",
            "s3_region": "S3_REGION",
            "playwright_browsers_path": "PLAYWRIGHT_BROWSERS_PATH",
            "sse_keepalive_seconds": "SC_SSE_KEEPALIVE_SECONDS",
            "schedule_window_seconds": "SCHEDULE_WINDOW_SECONDS",
            "connector_health_host": "CONNECTOR_HEALTH_HOST",
            "connector_health_port": "CONNECTOR_HEALTH_PORT",
            "connector_heartbeat_seconds": "CONNECTOR_HEARTBEAT_SECONDS",
            "log_level": "LOG_LEVEL",
            "metrics_render_budget_seconds": "METRICS_RENDER_BUDGET_SECONDS",
            "metrics_max_stale_seconds": "METRICS_MAX_STALE_SECONDS",
            "exec_timeout_seconds": "exec_timeout",
            "bootstrap_api_key": "SC_BOOTSTRAP_API_KEY",
            "ping_rate_limit_per_minute": "SC_PING_RATE_LIMIT_PER_MINUTE",
            "function_name": "SC_FUNCTION_NAME",
        }
        for field_name, env_var in optional.items():
            if env.get(env_var):
                values[field_name] = env[env_var]
        return cls(**values)

    @property
    def is_primary_connector(self) -> bool:
        return self.connector_primary if self.connector_primary is not None else not self.worker_location

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (nor the OpenFaaS secret 'database-url')")
        return self.database_url

    def require_internal_token(self) -> str:
        if not self.internal_token:
            raise RuntimeError("SC_INTERNAL_TOKEN is not set (nor the OpenFaaS secret 'internal-token')")
        if len(self.internal_token) < 32:
            raise RuntimeError("the internal token (secret 'internal-token') must be at least 32 characters")
        return self.internal_token

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (nor the OpenFaaS secret 'redis-url')")
        return self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
