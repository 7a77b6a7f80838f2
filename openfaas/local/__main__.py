"""`python -m openfaas.local run`: everything `make run` starts, in one foreground process; Ctrl-C stops it all."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from openfaas.local.runtime import LocalStack, new_internal_token
from openfaas.local.services import ManagedServer, embedded_postgres, embedded_redis, free_port
from openfaas.local.stack import PROJECT_ROOT

PREFERRED_POSTGRES_PORT = 54329
PREFERRED_REDIS_PORT = 63799


def _port_or_free(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def prepare_environment(data_dir: Path) -> tuple[dict[str, str], list[ManagedServer]]:
    """Uses DATABASE_URL / REDIS_URL when set, otherwise starts embedded servers whose data lives in data_dir."""
    env: dict[str, str] = {}
    servers: list[ManagedServer] = []
    if not os.environ.get("DATABASE_URL"):
        server = embedded_postgres(data_dir / "postgres", port=_port_or_free(PREFERRED_POSTGRES_PORT))
        servers.append(server)
        env["DATABASE_URL"] = server.url
    if not os.environ.get("REDIS_URL"):
        server = embedded_redis(data_dir / "redis", port=_port_or_free(PREFERRED_REDIS_PORT))
        servers.append(server)
        env["REDIS_URL"] = server.url
    if not os.environ.get("SC_CREDENTIAL_KEY"):
        env["SC_CREDENTIAL_KEY"] = _local_credential_key(data_dir)
    if not os.environ.get("SC_INTERNAL_TOKEN"):
        env["SC_INTERNAL_TOKEN"] = _local_secret(data_dir / "internal.token", new_internal_token)
    if not os.environ.get("SC_METRICS_TOKEN"):
        env["SC_METRICS_TOKEN"] = _local_secret(data_dir / "metrics.token", new_internal_token)
    os.environ.update(env)
    return env, servers


def _local_credential_key(data_dir: Path) -> str:
    from shared.security import generate_key

    return _local_secret(data_dir / "credential.key", generate_key)


def _local_secret(path: Path, generate: Callable[[], str]) -> str:
    """Generated on the first `make run`, kept in .data (mode 0600) for the next."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


async def _bootstrap_key() -> str | None:
    from shared import auth, db

    try:
        async with db.transaction() as conn:
            return await auth.bootstrap(conn)
    finally:
        await db.close_pool()


def run(args: argparse.Namespace) -> None:
    from shared.migrate import apply_migrations

    data_dir = Path(os.environ.get("SC_DATA_DIR", PROJECT_ROOT / ".data"))
    env, servers = prepare_environment(data_dir)
    applied = apply_migrations(os.environ["DATABASE_URL"])
    new_key = asyncio.run(_bootstrap_key())
    # Local only: requests without a key act on the default project, so the seed's curl examples work as written.
    env.setdefault("SC_ALLOW_ANONYMOUS_LOCAL", os.environ.get("SC_ALLOW_ANONYMOUS_LOCAL", "true"))
    stack = LocalStack(env=env, log_dir=data_dir / "logs", gateway_port=args.port)
    try:
        stack.start()
        print(_banner(stack, applied, servers, data_dir), flush=True)
        if new_key:
            print(
                f"\nAPI key of the default project (shown once; only its hash is stored):\n  {new_key}\n",
                flush=True,
            )
        stopped = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stopped.set())
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        stopped.wait()
        print("\nstopping...", flush=True)
    finally:
        stack.stop()
        for server in reversed(servers):
            server.stop()


def _banner(stack: LocalStack, applied: list[str], servers: list[ManagedServer], data_dir: Path) -> str:
    embedded = ", ".join(f"{s.name} {s.url}" for s in servers) or "none (using DATABASE_URL / REDIS_URL)"
    functions = ", ".join(name for name in stack.children if name not in ("gateway", "connector", "cron"))
    return f"""
supercheck-faas is running.
  gateway     {stack.gateway_url}/function/<name>   functions: {functions}
  embedded    {embedded}
  migrations  {len(applied)} applied this start
  logs        {data_dir / "logs"}
  metrics     {stack.gateway_url}/function/metrics   Authorization: Bearer <the token in {data_dir / "metrics.token"}>

Try:
  curl -X POST {stack.gateway_url}/function/api/monitors -H 'Content-Type: application/json' \\
    -d '{{"name":"Example","type":"http","target":"https://example.com","frequencyMinutes":1}}'

Ctrl-C stops everything."""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m openfaas.local")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the whole system locally")
    run_parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8080")))
    args = parser.parse_args()
    if args.command == "run":
        run(args)


if __name__ == "__main__":
    sys.exit(main())
