"""The seed's own request, verbatim, through the api function's real functions-framework app."""

from __future__ import annotations

import httpx
import pytest
from functions_framework.aio import create_asgi_app

from openfaas.local.stack import PROJECT_ROOT
from shared import streams
from shared.settings import reset_settings_cache

SEED_REQUEST = (
    '{"name":"Global Test","type":"http","target":"https://api.example.com","frequencyMinutes":5,'
    '"locationConfig":{"enabled":true,"locations":["us-east","eu-central","asia-pacific"],"strategy":"majority"}}'
)


@pytest.fixture(autouse=True)
def local_mode(monkeypatch):
    """As under `make run`: requests without a key act on the default project."""
    monkeypatch.setenv("SC_ALLOW_ANONYMOUS_LOCAL", "true")
    reset_settings_cache()


def call_api(aio, method: str, path: str, **kwargs) -> httpx.Response:
    app = create_asgi_app(target="handle", source=str(PROJECT_ROOT / "functions/api/main.py"))

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.request(method, path, **kwargs)

    return aio.run(go())


def test_the_seed_request_creates_a_pending_monitor_and_queues_its_first_run_everywhere(clean, aio):
    # No connector runs here, so the queued jobs are inspected, never executed: no traffic leaves loopback.
    response = call_api(
        aio, "POST", "/monitors", content=SEED_REQUEST, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    monitor = response.json()
    assert monitor["status"] == "pending"
    assert monitor["type"] == "http_request"
    assert monitor["frequencyMinutes"] == 5
    assert monitor["locationConfig"]["strategy"] == "majority"
    r = clean.redis()
    queued = {
        location: [streams.decode(f) for _, f in r.xrange(streams.job_stream("http_request", location))]
        for location in ("us-east", "eu-central", "asia-pacific")
    }
    assert all(len(jobs) == 1 and jobs[0]["monitor_id"] == monitor["id"] for jobs in queued.values())
    ((next_run, created),) = clean.sql("select next_run_at, created_at from monitors")
    assert (next_run - created).total_seconds() == 5 * 60

    fetched = call_api(aio, "GET", f"/monitors/{monitor['id']}")
    assert fetched.json()["id"] == monitor["id"]
    assert call_api(aio, "GET", "/monitors/not-a-uuid").status_code == 404
    assert (
        call_api(aio, "GET", f"/monitors/{monitor['id']}/results?page=0").json()["error"]["field"] == "page"
    )
    assert call_api(aio, "DELETE", "/monitors").status_code == 405


def test_results_page_rejects_out_of_range_limits(clean, aio):
    monitor = call_api(
        aio,
        "POST",
        "/monitors",
        json={"name": "x", "type": "website", "target": "https://status.example.net/", "enabled": False},
    ).json()
    response = call_api(aio, "GET", f"/monitors/{monitor['id']}/results?limit=101")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("limit:")
