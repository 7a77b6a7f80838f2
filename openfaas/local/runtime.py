"""The local stand-in for an OpenFaaS install: each stack.yml function as its own process, a gateway, the
connector and the cron emulator, supervised and restarted if they die (as OpenFaaS would)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from openfaas.local.services import die_with_parent, free_port, wait_for_port
from openfaas.local.stack import DEFAULT_STACK, PROJECT_ROOT, StackFunction, stack_functions

BIN = Path(sys.executable).parent


def new_internal_token() -> str:
    """A value for the `internal-token` secret (SC_INTERNAL_TOKEN): 256 random bits."""
    return secrets.token_urlsafe(32)


def function_command(function: StackFunction, port: int) -> list[str]:
    """The same entry point the OpenFaaS template's fprocess runs."""
    return [
        str(BIN / "functions-framework"),
        "--asgi",
        "--target",
        "handle",
        "--source",
        str(function.source),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int | None
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait()


@dataclass
class LocalStack:
    env: dict[str, str]
    log_dir: Path
    gateway_port: int = 8080
    with_connector: bool = True
    with_cron: bool = True
    connector_env: dict[str, str] = field(default_factory=dict)
    function_env: dict[str, str] = field(default_factory=dict)
    only_functions: list[str] | None = None  # a regional install runs just its check functions
    stack_file: Path = DEFAULT_STACK  # a benchmark may add a function of its own in a temporary stack file
    # Processes per function (default: its com.openfaas.scale.min in stack.yml), served in turn by the gateway:
    # OpenFaaS replicas on one machine.
    replicas: dict[str, int] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    metrics_token: str = ""  # the operator's token for /function/metrics, known once started
    _stopping: bool = False
    _watcher: threading.Thread | None = None

    @property
    def _without_cron(self) -> dict[str, str]:
        """Whoever drives ticks by hand (tests, benchmarks) wants one tick per call, not a minute-long window."""
        return {} if self.with_cron else {"SCHEDULE_WINDOW_SECONDS": "0"}

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self) -> LocalStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base_env = {**os.environ, **self.env, "GATEWAY_URL": self.gateway_url, "PYTHONUNBUFFERED": "1"}
        if not base_env.get("SC_INTERNAL_TOKEN"):
            # one for this stack's processes alone, so the connector's deliveries verify; `make run` keeps its own
            base_env["SC_INTERNAL_TOKEN"] = new_internal_token()
        if not base_env.get("SC_METRICS_TOKEN"):
            base_env["SC_METRICS_TOKEN"] = new_internal_token()  # the metrics function's operator token
        self.metrics_token = base_env["SC_METRICS_TOKEN"]
        upstreams = self._add_functions(base_env)
        self._add(
            Child(
                "gateway",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "openfaas.local.gateway:app_from_env",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.gateway_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                {**base_env, "GATEWAY_UPSTREAMS": json.dumps(upstreams)},
                self.gateway_port,
                self.log_dir / "gateway.log",
            )
        )
        if self.with_connector:
            self._add(
                Child(
                    "connector",
                    [sys.executable, "-m", "openfaas.connector"],
                    {**base_env, "CONNECTOR_HEALTH_PORT": "0", **self.connector_env},
                    None,
                    self.log_dir / "connector.log",
                )
            )
        if self.with_cron:
            self._add(
                Child(
                    "cron",
                    [sys.executable, "-m", "openfaas.local.cron"],
                    base_env,
                    None,
                    self.log_dir / "cron.log",
                )
            )
        try:
            for child in self.children.values():
                child.start()
            for child in self.children.values():
                if child.port:
                    self._wait_listening(child)
        except BaseException:
            # Nobody will call stop() on a stack whose start failed: the processes already running would live on,
            # and a connector among them would go on taking messages from the shared Redis for a gateway with a
            # function missing (in CI one such stack broke the five test modules after it).
            self.stop()
            raise
        self._watcher = threading.Thread(target=self._supervise, daemon=True)
        self._watcher.start()
        return self

    def _add_functions(self, base_env: dict[str, str]) -> dict[str, list[str]]:
        """A child per replica of each function served; returns each function's replica URLs."""
        upstreams: dict[str, list[str]] = {}
        for function in stack_functions(self.stack_file):
            if self.only_functions is not None and function.name not in self.only_functions:
                continue
            env = {
                **base_env,
                **function.environment,
                **self._without_cron,
                **self.env,
                **self.function_env,
                "SC_FUNCTION_NAME": function.name,  # its connections' application_name
            }
            for replica in range(self.replicas.get(function.name, function.min_replicas)):
                port = free_port()
                upstreams.setdefault(function.name, []).append(f"http://127.0.0.1:{port}")
                # the first replica keeps the function's own name (tests kill and wait for it by that name)
                name = function.name if replica == 0 else f"{function.name}#{replica + 1}"
                # stack.yml's environment, then this install's own overrides (as faas-cli --env would)
                self._add(
                    Child(name, function_command(function, port), env, port, self.log_dir / f"{name}.log")
                )
        return upstreams

    def _wait_listening(self, child: Child) -> None:
        try:
            wait_for_port("127.0.0.1", child.port, timeout=60, process=child.process)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(
                f"{child.name} did not start ({error}); its log ends:\n{child.log_tail()}"
            ) from None

    def _add(self, child: Child) -> None:
        self.children[child.name] = child

    def _supervise(self) -> None:
        while not self._stopping:
            for child in list(self.children.values()):
                if not self._stopping and child.process is not None and child.process.poll() is not None:
                    child.restarts += 1
                    time.sleep(0.5)
                    if not self._stopping:
                        child.start()
            time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """For chaos tests: the supervisor restarts the process, as OpenFaaS would restart a pod."""
        self.children[name].signal(sig)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        child = self.children[name]
        deadline = time.monotonic() + timeout
        while not child.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if child.port:
            wait_for_port("127.0.0.1", child.port, timeout=max(1.0, deadline - time.monotonic()))

    def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        for child in reversed(list(self.children.values())):
            child.stop()
