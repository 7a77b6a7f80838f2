"""A synthetic_test monitor through the whole local stack: API -> schedule -> connector -> check-synthetic -> aggregate."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import default_project
from tests.servers import LoopbackHttpServer, wait_until


@pytest.fixture
def api(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=60) as client:
        yield client


def test_a_synthetic_monitor_runs_in_every_location_and_goes_up(api, clean):
    site = LoopbackHttpServer(body=b"Shop is open").start()
    try:
        project = default_project(clean)
        test_id = clean.sql(
            "insert into synthetic_tests (project_id, title, script) values (%s, 'Shop is open', %s) returning id",
            (
                project,
                "async def run(page, context, variables):\n"
                f"    await page.goto('{site.url}')\n"
                "    assert 'Shop is open' in await page.content()\n",
            ),
        )[0][0]
        response = api.post(
            "/api/monitors",
            json={
                "name": "Shop journey",
                "type": "synthetic_test",
                "target": str(test_id),
                "frequencyMinutes": 5,
            },
        )
        assert response.status_code == 201, response.text
        monitor = response.json()

        def status():
            return api.get(f"/api/monitors/{monitor['id']}").json()["status"]

        wait_until(lambda: status() in ("up", "down"), timeout=120, message="the first synthetic run")
        results = api.get(f"/api/monitors/{monitor['id']}/results", params={"limit": 10}).json()["data"]
        assert status() == "up", [(r["status"], r["message"], r["details"]) for r in results]
        assert {r["location"] for r in results} == {"us-east", "eu-central", "asia-pacific"}
        assert all(r["details"]["testTitle"] == "Shop is open" for r in results)
    finally:
        site.stop()


def test_the_api_refuses_a_synthetic_monitor_more_often_than_every_five_minutes(api, clean):
    response = api.post(
        "/api/monitors",
        json={
            "name": "too often",
            "type": "synthetic_test",
            "target": "6f1c1d1e-0000-4000-8000-000000000001",
            "frequencyMinutes": 1,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": "frequencyMinutes: must be at least 5 for synthetic_test monitors",
        "field": "frequencyMinutes",
    }
