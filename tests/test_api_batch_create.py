"""Creating monitors in bulk: POST /monitors with an array, validated item by item, all or nothing, first runs
spread over the frequency (shared/rules/first_runs.py) and scheduled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.pipeline.schedule import schedule_tick
from shared.rules.first_runs import first_run_offsets
from tests.api_client import ApiClient
from tests.factories import make_project


def a_monitor(index: int, **overrides) -> dict:
    return {
        "name": f"bulk {index}",
        "type": "http_request",
        "target": f"https://svc.example.net/health/{index}",
        "frequencyMinutes": 1,
        **overrides,
    }


@pytest.fixture
def client(clean, aio) -> ApiClient:
    return ApiClient(aio, make_project(aio, "Bulk"))


@pytest.mark.parametrize(
    ("frequencies", "per_second", "expected"),
    [
        ([1], 100, [0.0]),  # one monitor runs at once
        ([1, 1, 1, 1], 2, [0.0, 0.5, 1.0, 1.5]),  # spread at 2 a second: 2 s
        ([1] * 4, 0.01, [0.0, 15.0, 30.0, 45.0]),  # never longer than the frequency (60 s)
        ([5, 1, 5, 1], 1, [0.0, 0.0, 1.0, 1.0]),  # each frequency spread on its own
        ([], 100, []),
    ],
)
def test_first_runs_of_a_batch_spread_over_the_shorter_of_their_rate_and_frequency(
    frequencies, per_second, expected
):
    assert first_run_offsets(frequencies, per_second) == expected


@pytest.mark.parametrize(
    ("bad_item", "field"),
    [
        ({"config": {"timeoutSeconds": 0}}, "[2].config.timeoutSeconds"),
        ({"frequencyMinutes": 0}, "[2].frequencyMinutes"),
        ({"type": "telnet"}, "[2].type"),
        ({"locationConfig": {"locations": ["mars"]}}, "[2].locationConfig.locations"),
        (
            {"alertConfig": {"notificationProviders": ["6d6a7d1e-0000-4000-8000-000000000000"]}},
            "[2].alertConfig.notificationProviders",
        ),
    ],
)
def test_a_batch_with_a_bad_item_names_its_index_and_field_and_creates_nothing(
    client, clean, bad_item, field
):
    batch = [a_monitor(0), a_monitor(1), a_monitor(2, **bad_item), a_monitor(3)]
    response = client.post("/monitors", json=batch)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["message"].startswith(f"{field}: ")
    assert clean.sql("select count(*) from monitors")[0][0] == 0
    assert clean.sql("select count(*) from audit_log where action = 'monitor.create'")[0][0] == 0


@pytest.mark.parametrize(
    ("body", "field"), [([], None), ([a_monitor(0), "x"], "[1]"), ([a_monitor(0), [a_monitor(1)]], "[1]")]
)
def test_an_empty_batch_or_an_item_that_is_no_object_is_refused(client, clean, body, field):
    response = client.post("/monitors", json=body)
    assert response.status_code == 400
    assert response.json()["error"].get("field") == field
    assert clean.sql("select count(*) from monitors")[0][0] == 0


def test_a_good_batch_creates_all_in_order_and_spreads_and_schedules_their_first_runs(client, clean, aio):
    count = 250  # at 100 first runs a second: spread over 2.5 s
    response = client.post("/monitors", json=[a_monitor(i, tags=["bulk", f"n{i % 3}"]) for i in range(count)])
    assert response.status_code == 201, response.text
    created = response.json()
    assert [m["name"] for m in created] == [f"bulk {i}" for i in range(count)]
    assert created[7]["tags"] == ["bulk", "n1"] and created[7]["config"]["timeoutSeconds"] == 30
    rows = clean.sql(
        """select m.name, m.created_at, m.next_run_at, r.scheduled_at from monitors m
           left join runs r on r.monitor_id = m.id order by m.created_at, split_part(m.name, ' ', 2)::int"""
    )
    assert len(rows) == count, "one run at most per monitor so far"
    created_at = rows[0][1]
    ran_at_once = [row for row in rows if row[3] is not None]
    # the API dispatched the first runs due within the lookahead (1 s) at once, the first monitor's among them
    assert rows[0][3] is not None and 0 < len(ran_at_once) < count
    first_slots = [row[3] if row[3] is not None else row[2] for row in rows]
    assert all(created_at <= slot <= created_at + timedelta(seconds=2.5) for slot in first_slots)
    assert first_slots == sorted(first_slots) and len(set(first_slots)) == count, (
        "evenly, in the batch's order"
    )
    # a tick after the window takes every first run left, each on its own slot
    aio.run(schedule_tick(now=created_at + timedelta(seconds=3)))
    runs = clean.sql("select m.name, r.scheduled_at from runs r join monitors m on m.id = r.monitor_id")
    assert len(runs) == count
    assert sorted(slot for _, slot in runs) == first_slots
    assert clean.sql("select count(*) from audit_log where action = 'monitor.create'")[0][0] == count


def test_a_single_monitor_still_runs_at_once_and_the_openapi_document_shows_both_forms(client, clean):
    one = client.post("/monitors", json=a_monitor(0))
    assert one.status_code == 201 and one.json()["name"] == "bulk 0"
    assert clean.sql("select count(*) from runs")[0][0] == 1
    doc = ApiClient(client.aio, None).get("/openapi.json").json()
    create = doc["paths"]["/monitors"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body[1]["type"] == "array" and body[1]["items"] == body[0] and body[1]["maxItems"] == 20_000
    reply = create["responses"]["201"]["content"]["application/json"]["schema"]["oneOf"]
    assert reply[1]["items"] == reply[0]
