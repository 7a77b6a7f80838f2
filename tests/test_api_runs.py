"""The API reads CI waits on and the trial's location: GET /runs?ids= (several runs in one call, the caller's
project only) and POST /monitors/test at a chosen location (its region's gateway; never a per-location note)."""

from __future__ import annotations

import uuid

import pytest

from shared.api.services.trial import trial_gateway
from shared.checks.spec import TRIAL_LOCATION, CheckTrial
from shared.errors import ApiError
from shared.settings import Settings
from tests.api_client import ApiClient
from tests.factories import make_project


@pytest.fixture
def two_projects(clean, aio):
    return ApiClient(aio, make_project(aio, "A")), ApiClient(aio, make_project(aio, "B"))


def _started_run(client: ApiClient, name: str) -> tuple[str, str]:
    monitor = client.post(
        "/monitors", json={"name": name, "type": "http", "target": "https://a.example.net/", "enabled": False}
    )
    assert monitor.status_code == 201, monitor.text
    started = client.post(f"/monitors/{monitor.json()['id']}/run")
    assert started.status_code == 202, started.text
    return monitor.json()["id"], started.json()["runIds"][0]


def test_several_runs_are_read_at_once_in_the_order_asked_and_only_the_callers(two_projects):
    a, b = two_projects
    (first_monitor, first), (_, second) = _started_run(a, "one"), _started_run(a, "two")
    _, foreign = _started_run(b, "theirs")
    answer = a.get("/runs", params={"ids": f"{second},{foreign},{first},{uuid.uuid4()}"})
    assert answer.status_code == 200, answer.text
    runs = answer.json()["data"]
    assert [run["id"] for run in runs] == [second, first], (
        "another project's run and an unknown id are left out"
    )
    assert runs[1]["monitorId"] == first_monitor and runs[1]["finalizedAt"] is None
    assert (
        runs[1]["expectedLocations"]
        == runs[1]["missingLocations"]
        == ["us-east", "eu-central", "asia-pacific"]
    )
    assert runs[1] == a.get(f"/runs/{first}").json(), "the same shape as one run's read"
    assert b.get("/runs", params={"ids": first}).json() == {"data": []}


@pytest.mark.parametrize(
    "ids, message",
    [
        ("", "at least one"),
        ("nope", "'nope' is not a run id"),
        (",".join([str(uuid.uuid4())] * 101), "at most 100"),
    ],
)
def test_run_ids_are_validated_naming_the_parameter(two_projects, ids, message):
    a, _ = two_projects
    answer = a.get("/runs", params={"ids": ids})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == "ids" and message in answer.json()["error"]["message"]


def _settings(**values) -> Settings:
    return Settings(database_url=None, redis_url=None, gateway_url="http://gw.local:8080", **values)


@pytest.mark.parametrize(
    "location, regions, gateway",
    [
        (TRIAL_LOCATION, {}, "http://gw.local:8080"),
        ("eu-central", {}, "http://gw.local:8080"),
        ("eu-central", {"eu-central": "http://eu.gw:8080"}, "http://eu.gw:8080"),
        ("us-east", {"eu-central": "http://eu.gw:8080"}, "http://gw.local:8080"),
    ],
)
def test_a_trial_runs_on_its_locations_gateway_when_one_is_configured(location, regions, gateway):
    assert trial_gateway(location, _settings(region_gateway_urls=regions)) == gateway


def test_a_trial_at_a_location_this_installation_lacks_is_refused_naming_the_field():
    with pytest.raises(ApiError) as refused:
        trial_gateway("mars", _settings())
    assert refused.value.status == 400 and refused.value.field == "location"
    assert "direct, us-east, eu-central, asia-pacific" in refused.value.message


def test_a_trial_job_is_a_trial_whatever_location_it_runs_at():
    """The certificate schedule keys its notes by the job's location: a trial must leave none behind."""
    trial = CheckTrial.model_validate(
        {"type": "http", "target": "https://a.example.net/", "location": "eu-central"}
    )
    assert trial.location == "eu-central"
    assert trial.as_job(uuid.uuid4()).location == TRIAL_LOCATION


def test_the_api_refuses_a_trial_at_an_unknown_location(two_projects):
    a, _ = two_projects
    answer = a.post(
        "/monitors/test", json={"type": "http", "target": "https://a.example.net/", "location": "mars"}
    )
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "location"
