"""What each function imports on a cold start: heavy optional packages load only in the functions (and on the
requests) that use them. Each case imports a handler in a fresh interpreter, as functions-framework does."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.checks import CHECK_TYPES

ROOT = Path(__file__).resolve().parents[1]

# Loaded only where first used: notification sending, S3 uploads, the browser, the synthetic runner.
NEVER_AT_IMPORT = ["apprise", "requests", "boto3", "botocore", "playwright", "shared.synthetic.check"]

LOAD_HANDLER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
exec(sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(function: str, then: str = "", **env: str) -> set[str]:
    """Names in sys.modules after importing functions/<function>/main.py, then running `then`."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_HANDLER, str(ROOT / "functions" / function / "main.py"), then],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, **env},
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def loaded(modules: set[str], names: list[str]) -> list[str]:
    return [name for name in names if name in modules]


@pytest.mark.parametrize(
    "function",
    [
        "check_http",
        "check_port",
        "check_ping",
        "check_dns",
        "schedule",
        "aggregate",
        "cleanup",
        "alert",
        "status",
    ],
)
def test_a_function_imports_none_of_the_heavy_optional_packages(function):
    assert loaded(modules_after(function), NEVER_AT_IMPORT) == []


@pytest.mark.parametrize(
    "function", ["check_http", "check_port", "check_ping", "check_dns", "check_synthetic"]
)
def test_a_check_function_loads_no_check_module_until_a_check_runs(function):
    modules = modules_after(function)
    assert (
        loaded(
            modules,
            [
                "shared.checks.http",
                "shared.checks.ping",
                "shared.checks.port",
                "shared.checks.dns",
                "dns",
                "httpx",
            ],
        )
        == []
    )


def test_validating_a_port_check_loads_neither_the_browser_runner_nor_the_notifier():
    modules = modules_after(
        "check_port",
        "from shared.checks.spec import CheckTrial; "
        "CheckTrial.model_validate({'type': 'port_check', 'target': 'db.example.net', 'config': {'port': 5432}})",
    )
    assert "shared.checks.port" in modules
    assert loaded(modules, NEVER_AT_IMPORT + ["shared.notify", "shared.checks.ping"]) == []


def test_the_api_answers_health_without_the_database_driver_redis_or_an_http_client():
    modules = modules_after("api")
    heavy = [
        "psycopg",
        "redis",
        "httpx",
        "cryptography",
        "shared.notify",
        "shared.api.services.monitors",
        "shared.pipeline.rollups",
        "shared.pipeline.long_range",
        "shared.api.services.results",
        "markdown_it",
    ]
    assert loaded(modules, NEVER_AT_IMPORT + heavy) == []


def test_aggregate_loads_the_markdown_parser_never_as_it_only_escapes_names_for_draft_incidents():
    modules = modules_after("aggregate")
    assert "shared.rules.status_drafts" in modules
    assert loaded(modules, ["markdown_it"]) == []


def test_the_alert_function_loads_apprise_only_to_send():
    modules = modules_after("alert", "from shared.notify.base import load_apprise; load_apprise()")
    assert "apprise" in modules


def test_every_check_type_resolves_to_an_async_check_and_a_config_model():
    for check_type in CHECK_TYPES.values():
        assert inspect.iscoroutinefunction(check_type.run), check_type.name
        assert issubclass(check_type.config_model, BaseModel), check_type.name


def test_a_webhook_alert_is_sent_without_loading_apprise():
    send = """
import asyncio, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from shared import notify

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers['Content-Length']))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(('127.0.0.1', 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
message = notify.build_message('failure', {'monitorName': 'Checkout', 'status': 'down'})
url = f'http://127.0.0.1:{server.server_address[1]}/hook'
result = asyncio.run(notify.send_to_provider('webhook', {'url': url}, message))
assert result.status == 'sent', result
"""
    assert "apprise" not in modules_after("alert", send, ALLOW_INTERNAL_TARGETS="true")
