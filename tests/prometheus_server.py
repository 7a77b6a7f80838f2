"""A real Prometheus server for tests: Debian's binary on a free loopback port, scraping the local gateway's metrics
function every second with a bearer token, queried through its HTTP API; and promtool for the files it checks."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml

from openfaas.local.services import die_with_parent, free_port

METRICS_PATH = "/function/metrics"
SCRAPE_JOB = "supercheck"
INSTALL_HINT = "run scripts/install-prometheus.sh as root (Debian's prometheus package brings promtool too)"


def binary(name: str) -> str:
    """The path of `prometheus` or `promtool`; a clear failure, not a skip, when it is missing: make test installs it."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} not found on PATH: {INSTALL_HINT}")
    return path


def promtool(*args: str, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary("promtool"), *args], input=stdin, capture_output=True, timeout=timeout, check=False
    )


class PrometheusQueryError(AssertionError):
    """The query API refused an expression (status 400 for a syntax error, with Prometheus' own message)."""

    def __init__(self, promql: str, status_code: int, error: str) -> None:
        super().__init__(f"{promql!r}: HTTP {status_code}: {error}")
        self.status_code = status_code
        self.error = error


@dataclass
class ScrapeTarget:
    """What the server scrapes: the gateway's metrics function, as an operator or a project would configure it."""

    gateway_url: str
    token: str
    metrics_path: str = METRICS_PATH


@dataclass
class PrometheusServer:
    workdir: Path
    target: ScrapeTarget | None = None  # None: a server with no scrape job, used as a PromQL parser
    rule_files: list[Path] = field(default_factory=list)
    scrape_interval: str = "1s"
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def config(self, token_file: Path) -> dict:
        config: dict = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [],
        }
        if self.target is not None:
            config["scrape_configs"].append(
                {
                    "job_name": SCRAPE_JOB,
                    "metrics_path": self.target.metrics_path,
                    "scrape_timeout": self.scrape_interval,
                    "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    "static_configs": [{"targets": [urlsplit(self.target.gateway_url).netloc]}],
                }
            )
        return config

    def start(self, timeout: float = 60) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        token_file = self.workdir / "metrics-token"
        if self.target is not None:
            # the token sits in a file beside the config, as the README tells operators to keep it
            token_file.write_text(self.target.token)
            token_file.chmod(0o600)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config(token_file), sort_keys=False))
        self.port = self.port or free_port()
        argv = [
            binary("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prometheus was not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _api(self, path: str, data: dict | None = None) -> dict:
        # POST: long expressions stay out of the URL; the API takes form bodies for query endpoints
        reply = (
            httpx.post(f"{self.url}{path}", data=data, timeout=10)
            if data is not None
            else httpx.get(f"{self.url}{path}", timeout=10)
        )
        body = reply.json()
        if reply.status_code != 200 or body.get("status") != "success":
            raise PrometheusQueryError(
                (data or {}).get("query", path), reply.status_code, body.get("error", reply.text)
            )
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """An instant query's result: for a vector, one {"metric": labels, "value": [time, "text"]} per series."""
        return self._api("/api/v1/query", {"query": promql})["result"]

    def targets(self) -> list[dict]:
        return self._api("/api/v1/targets")["activeTargets"]

    def rules(self) -> list[dict]:
        """Every loaded rule with its health ("ok", "err", "unknown" before its first evaluation) and last error."""
        return [rule for group in self._api("/api/v1/rules")["groups"] for rule in group["rules"]]

    def describe_targets(self) -> str:
        """One line per scrape target with its health and last error: what a failed wait_for most needs."""
        lines = [
            f"{target['scrapeUrl']}: {target['health']} {target.get('lastError') or ''}".rstrip()
            for target in self.targets()
        ]
        return "\n".join(lines) or "no scrape targets"

    def wait_for(
        self, promql: str, predicate: Callable[[list[dict]], object], timeout: float = 60, message: str = ""
    ) -> list[dict]:
        """Polls the query until the predicate holds on its result; a timeout says what was last seen and why
        the scrapes may have failed."""
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while True:
            result = self.query(promql)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {message or promql!r}; last result {result}\n"
                    f"targets:\n{self.describe_targets()}"
                )
            time.sleep(0.5)


def values(result: list[dict]) -> list[float]:
    """The sample values of an instant vector result."""
    return [float(series["value"][1]) for series in result]


@contextmanager
def running_prometheus(
    workdir: Path, target: ScrapeTarget | None = None, rule_files: list[Path] | None = None
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(workdir, target, rule_files or []).start()
    try:
        yield server
    finally:
        server.stop()
