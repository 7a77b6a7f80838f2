"""Inputs that used to answer 500 or slip through: each answers 400 naming its field (issue 16, items 3, 6, 9).
Through the api function's real app on a real Postgres."""

from __future__ import annotations

import pytest

from shared.rules.deadlines import timeout_problem
from tests.api_client import ApiClient
from tests.factories import make_project


@pytest.fixture
def api(clean, aio) -> ApiClient:
    return ApiClient(aio, make_project(aio, "odd"))


def a_monitor(api: ApiClient, **fields) -> dict:
    body = {"name": "m", "type": "http", "target": "https://odd.example.net/", "enabled": False, **fields}
    response = api.post("/monitors", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def assert_refused(response, field: str, says: str = "") -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    assert says in error["message"], error


# --- a timeout must fit inside the frequency -------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "grace", "minutes", "fits"),
    [
        (30, 30, 1, True),  # the default timeout at the default grace: exactly a minute
        (31, 30, 1, False),
        (75, 30, 1, False),  # the case: finalized unknown before its timeout result
        (75, 30, 2, True),
        (300, 30, 5, False),
        (270, 30, 5, True),
        (300, 0, 5, True),
        (61, 0, 1, False),
        (1, 60, 1, False),  # a grace as long as the frequency leaves a check no time at all
    ],
)
def test_a_timeout_fits_when_it_and_the_grace_fit_inside_the_frequency(budget, grace, minutes, fits):
    problem = timeout_problem(budget, grace, minutes)
    assert (problem is None) == fits
    if problem:
        assert "timeoutSeconds" in problem


def test_a_monitor_whose_timeout_cannot_finish_inside_its_frequency_is_refused_on_save(api):
    refused = api.post(
        "/monitors",
        json={
            "name": "slow",
            "type": "http",
            "target": "https://odd.example.net/",
            "frequencyMinutes": 1,
            "config": {
                "timeoutSeconds": 45
            },  # within the type's 60 s, but 45 + 30 s of grace is over a minute
            "enabled": False,
        },
    )
    assert_refused(refused, "config.timeoutSeconds", "timeoutSeconds")
    ping = api.post(
        "/monitors",
        json={
            "name": "ping",
            "type": "ping_host",
            "target": "odd.example.net",
            "frequencyMinutes": 1,
            "config": {"timeoutSeconds": 40},  # 3 × 0.5 s + 40 s fits the type; with the grace, not a minute
            "enabled": False,
        },
    )
    assert_refused(ping, "config.timeoutSeconds", "timeoutSeconds")
    a_monitor(api, frequencyMinutes=1, config={"timeoutSeconds": 30})
    a_monitor(api, frequencyMinutes=2, config={"timeoutSeconds": 60})


def test_a_patch_of_the_frequency_alone_is_refused_when_the_timeout_no_longer_fits(api):
    monitor = a_monitor(api, frequencyMinutes=5, config={"timeoutSeconds": 60})
    refused = api.request("PATCH", f"/monitors/{monitor['id']}", json={"frequencyMinutes": 1})
    assert_refused(refused, "config.timeoutSeconds", "frequencyMinutes")
    assert api.get(f"/monitors/{monitor['id']}").json()["frequencyMinutes"] == 5
    shorter = api.request(
        "PATCH", f"/monitors/{monitor['id']}", json={"frequencyMinutes": 1, "config": {"timeoutSeconds": 20}}
    )
    assert shorter.status_code == 200, shorter.text


# --- odd inputs that answered 500 ------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["x", 3, ["a"], True])
def test_a_patch_whose_config_is_not_an_object_names_config(api, config):
    monitor = a_monitor(api)
    assert_refused(api.request("PATCH", f"/monitors/{monitor['id']}", json={"config": config}), "config")


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ({"date": "9999-12-31"}, 400),
        ({"date": "9999-12-31", "timezoneOffset": 840}, 400),
        ({"date": "0001-01-01", "timezoneOffset": -60}, 400),
        ({"date": "0001-01-01", "timezoneOffset": 0}, 200),
        ({"date": "0001-01-01", "timezoneOffset": 60}, 200),
        ({"date": "9999-12-30", "timezoneOffset": 0}, 200),
        ({"date": "2025-06-15", "timezoneOffset": -120}, 200),
    ],
)
def test_a_results_day_outside_the_representable_years_names_date(api, query, answer):
    monitor = a_monitor(api)
    response = api.get(f"/monitors/{monitor['id']}/results", params=query)
    if answer == 400:
        assert_refused(response, "date")
    else:
        assert response.status_code == 200, response.text


def test_a_nul_in_a_query_or_path_value_names_its_parameter(api):
    monitor = a_monitor(api)
    assert_refused(api.get("/monitors?tag=check%00out"), "tag", "NUL")
    assert_refused(api.get(f"/monitors/{monitor['id']}/results?location=us%00east"), "location", "NUL")
    assert_refused(api.request("DELETE", "/variables/PASS%00WORD"), "name", "NUL")
    assert_refused(api.request("PATCH", "/variables/PASS%00WORD", json={"value": "x"}), "name", "NUL")
    assert api.get("/monitors?tag=checkout").status_code == 200


@pytest.mark.parametrize("location", ["", "x" * 65])
def test_a_direct_check_location_must_be_1_to_64_characters(api, location):
    body = {"type": "http", "target": "https://odd.example.net/", "location": location}
    assert_refused(api.post("/monitors/test", json=body), "location")


# --- unknown locations ----------------------------------------------------------------------------------


def test_an_unknown_location_is_refused_on_save_not_run_elsewhere(api):
    refused = api.post(
        "/monitors",
        json={
            "name": "mars",
            "type": "http",
            "target": "https://odd.example.net/",
            "locationConfig": {"locations": ["us-east", "mars-1"]},
            "enabled": False,
        },
    )
    assert_refused(refused, "locationConfig.locations", "mars-1")
    monitor = a_monitor(api, locationConfig={"locations": ["eu-central"]})
    patched = api.request(
        "PATCH", f"/monitors/{monitor['id']}", json={"locationConfig": {"locations": ["mars-1"]}}
    )
    assert_refused(patched, "locationConfig.locations", "mars-1")
