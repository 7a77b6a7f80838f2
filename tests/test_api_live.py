"""The API on a live local stack: Server-Sent Events, and schemathesis against the OpenAPI document."""

from __future__ import annotations

import json
import threading
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from shared import streams
from shared.api import routes  # noqa: F401  (registers every endpoint)
from shared.api.openapi import openapi_document
from tests.factories import make_project


def read_events(url: str, count: int, headers: dict | None = None, timeout: float = 30) -> list[dict]:
    """Reads `count` SSE events (ignoring comments) from url."""
    events: list[dict] = []
    with httpx.stream("GET", url, headers=headers or {}, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if "data" in current:  # as EventSource: a block without data (retry:) dispatches nothing
                    events.append(current)
                    if len(events) >= count:
                        return events
                current = {}
                continue
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value
    return events


def test_live_events_stream_results_and_status_changes_and_resume_from_last_event_id(
    stack, clean, http_target
):
    base = f"{stack.gateway_url}/function/api"
    monitor = httpx.post(
        f"{base}/monitors", json={"name": "sse", "type": "http", "target": http_target.url, "enabled": False}
    ).json()
    received: list[dict] = []
    reader = threading.Thread(
        target=lambda: received.extend(read_events(f"{base}/events?monitorId={monitor['id']}", count=4))
    )
    reader.start()
    threading.Event().wait(1.0)  # let the stream subscribe before anything happens
    assert httpx.post(f"{base}/monitors/{monitor['id']}/run").status_code == 202
    reader.join(timeout=30)
    kinds = [event["event"] for event in received]
    assert kinds.count("result") == 3 and "status_change" in kinds, kinds
    assert all(event["data"]["monitorId"] == monitor["id"] for event in received)
    change = next(e for e in received if e["event"] == "status_change")["data"]
    assert (change["from"], change["to"]) == ("pending", "up")

    resumed = read_events(
        f"{base}/events?monitorId={monitor['id']}", count=3, headers={"Last-Event-ID": received[0]["id"]}
    )
    assert [e["id"] for e in resumed] == [e["id"] for e in received[1:4]]
    assert httpx.get(f"{base}/events", headers={"Last-Event-ID": "nonsense"}).status_code == 400


@pytest.fixture(scope="module")
def api_only_stack(infra, tmp_path_factory):
    """Gateway and functions without a connector: monitors the fuzzer creates are queued but never checked,
    so no generated target ever receives traffic."""
    local = LocalStack(
        env={},
        log_dir=tmp_path_factory.mktemp("fuzz-logs"),
        gateway_port=free_port(),
        with_connector=False,
        with_cron=False,
    ).start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def fuzz_key(api_only_stack, aio):
    return make_project(aio, "fuzz")


schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/events")


def _stops_at_the_router(case) -> bool:
    """A raw newline in a path value: functions-framework's catch-all route does not match it and answers its own
    plain-text 404 before the API sees the request (in production as here), so only "no server error" applies."""
    return any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in (case.path_parameters or {}).values())


# Run by hand (`pytest -m fuzz tests/test_api_live.py`, see README "Development"): a few minutes at 100 examples
# per operation, positive and negative, which `make test` skips.
@pytest.mark.fuzz
@schema.parametrize()
@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_documented_contract(case, api_only_stack, fuzz_key):
    contract = [status_code_conformance, content_type_conformance, response_schema_conformance]
    case.call_and_validate(
        base_url=f"{api_only_stack.gateway_url}/function/api",
        headers={"Authorization": f"Bearer {fuzz_key}"},
        checks=[not_a_server_error, *([] if _stops_at_the_router(case) else contract)],
        timeout=30,
    )


def test_a_malformed_live_event_is_skipped_and_the_stream_goes_on(stack, infra, clean):
    base = f"{stack.gateway_url}/function/api"
    monitor = httpx.post(
        f"{base}/monitors",
        json={
            "name": "after poison",
            "type": "http_request",
            "target": "http://127.0.0.1:9/",
            "enabled": False,
        },
    ).json()
    received: list[dict] = []
    reader = threading.Thread(
        target=lambda: received.extend(read_events(f"{base}/events?monitorId={monitor['id']}", count=1))
    )
    reader.start()
    threading.Event().wait(1.0)  # let the stream subscribe before anything happens
    infra.redis().xadd(streams.LIVE_EVENTS_STREAM, {"not-the-payload": "x"})
    infra.redis().xadd(streams.LIVE_EVENTS_STREAM, {streams.PAYLOAD_FIELD: "[1, 2"})
    assert httpx.post(f"{base}/monitors/{monitor['id']}/run").status_code == 202
    reader.join(timeout=30)
    assert received and received[0]["data"]["monitorId"] == monitor["id"]


def test_types_narrows_the_stream_to_the_events_asked_for(stack, clean, http_target):
    base = f"{stack.gateway_url}/function/api"
    monitor = httpx.post(
        f"{base}/monitors",
        json={"name": "only changes", "type": "http", "target": http_target.url, "enabled": False},
    ).json()
    received: list[dict] = []
    reader = threading.Thread(
        target=lambda: received.extend(
            read_events(f"{base}/events?monitorId={monitor['id']}&types=status_change", count=1)
        )
    )
    reader.start()
    threading.Event().wait(1.0)  # let the stream subscribe before anything happens
    assert httpx.post(f"{base}/monitors/{monitor['id']}/run").status_code == 202
    reader.join(timeout=30)
    assert [event["event"] for event in received] == ["status_change"]  # the three results came first
    refused = httpx.get(f"{base}/events?types=status_change,gossip")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "types"


def test_a_reader_gets_keep_alives_while_other_projects_events_keep_the_stream_busy(infra, aio, monkeypatch):
    from shared.api.live import _events

    monkeypatch.setenv("SC_SSE_KEEPALIVE_SECONDS", "0.5")
    from shared.settings import reset_settings_cache

    reset_settings_cache()
    infra.redis().xadd(streams.LIVE_EVENTS_STREAM, {streams.PAYLOAD_FIELD: '{"type": "result"}'})
    newest = infra.redis().xrevrange(streams.LIVE_EVENTS_STREAM, count=1)[0][0]

    stop = threading.Event()

    def busy() -> None:  # events this reader filters out, every 50 ms: the stream is never idle
        while not stop.wait(0.05):
            infra.redis().xadd(streams.LIVE_EVENTS_STREAM, {streams.PAYLOAD_FIELD: '{"type": "result"}'})

    async def read() -> list[str]:
        chunks, stream = [], _events(uuid.uuid4(), None, newest, frozenset({"alert"}))
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == 3:
                await stream.aclose()
                return chunks
        return chunks

    producer = threading.Thread(target=busy)
    producer.start()
    try:
        chunks = aio.run(read(), timeout=30)
    finally:
        stop.set()
        producer.join()
    assert chunks[0].startswith(": connected") and chunks[1:] == [": keep-alive\n\n"] * 2
