"""The dashboard's monitor list through the API: search (wildcards taken literally, credentials never searchable
and never shown), sort, the 24-hour summary against a hand computation over seeded rollups and raw results, and
the status counts, all scoped to the caller's project."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.api.services import series
from shared.security import TARGET_SECRET_PARAMETER_PATTERN, TARGET_USERINFO_PATTERN, mask_target
from tests.api_client import ApiClient
from tests.factories import add_result, add_rollup, make_project, set_marks

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
HOURLY_THROUGH = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Project:
    """A project of its own with its client, and a way to store monitors in it as they might be stored."""

    def __init__(self, infra, aio, label: str):
        self.infra = infra
        name = f"{label} {uuid.uuid4()}"  # projects outlive `clean`: a name of its own finds this one
        self.client = ApiClient(aio, make_project(aio, name))
        self.id = infra.sql("select id from projects where name = %s", (name,))[0][0]

    def monitor(self, name: str, target: str = "https://shop.example.net/", **columns) -> str:
        values = {"type": "http_request", "status": "up", "enabled": True, "tags": [], **columns}
        return str(
            self.infra.sql(
                """insert into monitors (project_id, name, type, target, frequency_minutes, status, enabled, tags,
                                         last_check_at, created_at)
                   values (%s, %s, %s, %s, 5, %s, %s, %s, %s, coalesce(%s, now())) returning id""",
                (
                    self.id,
                    name,
                    values["type"],
                    target,
                    values["status"],
                    values["enabled"],
                    values["tags"],
                    values.get("last_check_at"),
                    values.get("created_at"),
                ),
            )[0][0]
        )

    def listed(self, **params) -> list[str]:
        answer = self.client.get("/monitors", params={"limit": 100, **params})
        assert answer.status_code == 200, answer.text
        return [item["name"] for item in answer.json()["data"]]


@pytest.fixture
def project(clean, aio) -> Project:
    return Project(clean, aio, "list")


@pytest.fixture
def stranger(clean, aio) -> Project:
    return Project(clean, aio, "stranger")


# --- search ----------------------------------------------------------------------------------------------


def test_search_matches_a_substring_of_the_name_or_the_target_in_any_case(project):
    project.monitor("Checkout API", "https://shop.example.net/cart")
    project.monitor("Status page", "https://status.example.org/")
    project.monitor("db", "db.internal.example.com", type="port_check")

    assert project.listed(search="checkout") == ["Checkout API"]
    assert project.listed(search="EXAMPLE.ORG") == ["Status page"]
    assert sorted(project.listed(search="example")) == ["Checkout API", "Status page", "db"]
    assert project.listed(search="nowhere") == []


def test_search_takes_like_wildcards_and_backslashes_literally(project):
    project.monitor("50% off")
    project.monitor("500 errors")
    project.monitor("a_b")
    project.monitor("axb")
    project.monitor("back\\slash")

    assert project.listed(search="%") == ["50% off"]
    assert project.listed(search="0%") == ["50% off"]
    assert project.listed(search="_") == ["a_b"]
    assert project.listed(search="\\") == ["back\\slash"]


def test_credentials_in_a_target_are_neither_searchable_nor_shown(project):
    userinfo = project.monitor("legacy", "https://alice:hunter2hunter2@db.example.net/health")
    token = project.monitor("api", "https://api.example.net/v1?x=1&api_key=zz9pluralzalpha&y=2")

    for secret in ("hunter2", "alice", "zz9plural", "pluralz"):
        assert project.listed(search=secret) == [], secret
    assert project.listed(search="db.example") == ["legacy"]
    assert project.listed(search="api_key=") == ["api"]
    assert project.listed(search="y=2") == ["api"]

    shown = {item["id"]: item["target"] for item in project.client.get("/monitors").json()["data"]}
    assert shown[userinfo] == "https://****@db.example.net/health"
    assert shown[token] == "https://api.example.net/v1?x=1&api_key=zz****ha&y=2"
    assert project.client.get(f"/monitors/{token}").json()["target"] == shown[token]


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("https://shop.example.net/", "https://shop.example.net/"),
        ("https://user:pass@host.example.net:8443/x", "https://****@host.example.net:8443/x"),
        ("https://user@host.example.net/", "https://****@host.example.net/"),
        ("https://host.example.net/a@b", "https://host.example.net/a@b"),  # an @ in the path is no userinfo
        ("https://h.example.net/?token=abcdefghij&x=1", "https://h.example.net/?token=ab****ij&x=1"),
        ("https://h.example.net/?ACCESS_TOKEN=abcdefghij", "https://h.example.net/?ACCESS_TOKEN=ab****ij"),
        ("https://h.example.net/?a=1&X-Api-Key=short#part", "https://h.example.net/?a=1&X-Api-Key=****#part"),
        ("https://h.example.net/?q=token&password=", "https://h.example.net/?q=token&password="),
        ("db.example.net", "db.example.net"),
    ],
)
def test_a_target_is_shown_with_its_credentials_masked(target, shown):
    assert mask_target(target) == shown


def test_the_searched_target_is_stripped_by_the_patterns_that_mask_it_for_display():
    migration = (
        Path(__file__).resolve().parents[1] / "shared/migrations/0010_monitor_search_target.sql"
    ).read_text()
    for pattern in (TARGET_USERINFO_PATTERN, TARGET_SECRET_PARAMETER_PATTERN):
        assert f"'{pattern}'" in migration


def test_a_search_too_long_or_empty_is_refused_naming_the_field(project):
    for search in ("", "x" * 201):
        answer = project.client.get("/monitors", params={"search": search})
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "search"


# --- sort ----------------------------------------------------------------------------------------------------


def test_each_sort_key_orders_both_ways_and_ties_break_on_id(project):
    early, late = NOW - timedelta(days=2), NOW - timedelta(days=1)
    ids = {
        "b": project.monitor("b", status="down", type="website", last_check_at=late, created_at=early),
        "A": project.monitor("A", status="up", type="http_request", last_check_at=early, created_at=late),
        "c": project.monitor("c", status="up", enabled=False, type="ping_host", created_at=NOW),
        "a": project.monitor("a", status="pending", type="port_check", last_check_at=late, created_at=early),
    }
    by_id = sorted(ids, key=lambda name: ids[name])

    def tie(*names):  # the names in id order
        return [name for name in by_id if name in names]

    assert project.listed(sort="name") == [*tie("A", "a"), "b", "c"]
    assert project.listed(sort="-name") == ["c", "b", *tie("A", "a")]
    assert project.listed(sort="status") == ["b", "c", "a", "A"]  # down, paused (not enabled), pending, up
    assert project.listed(sort="-status") == ["A", "a", "c", "b"]
    assert project.listed(sort="type") == ["A", "c", "a", "b"]
    assert project.listed(sort="-type") == ["b", "a", "c", "A"]
    assert project.listed(sort="lastCheckAt") == ["A", *tie("b", "a"), "c"]  # never checked: last either way
    assert project.listed(sort="-lastCheckAt") == [*tie("b", "a"), "A", "c"]
    assert project.listed(sort="createdAt") == [*tie("b", "a"), "A", "c"]
    assert project.listed(sort="-createdAt") == ["c", "A", *tie("b", "a")]
    assert project.listed() == ["c", "A", *tie("b", "a")], "newest first, as before sort existed"


@pytest.mark.parametrize("sort", ["size", "--name", "name-", "NAME", ""])
def test_an_unknown_sort_is_refused_naming_the_field(project, sort):
    answer = project.client.get("/monitors", params={"sort": sort})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["field"] == "sort" and "lastCheckAt" in error["message"]


# --- the 24-hour summary ---------------------------------------------------------------------------------------


def test_the_summary_adds_hourly_rollups_before_the_watermark_to_raw_results_after_it(project, clean, aio):
    busy = uuid.UUID(project.monitor("busy"))
    quiet = uuid.UUID(project.monitor("quiet"))
    set_marks(clean, rollup_hourly_through=HOURLY_THROUGH)
    first_hour = datetime(2026, 3, 1, 11, tzinfo=UTC)  # the 24 hours end with the current one, 10:00
    add_rollup(
        clean, "rollup_hourly", busy, "us-east", first_hour - timedelta(hours=1), [9999], up=0
    )  # too old
    add_rollup(clean, "rollup_hourly", busy, "us-east", first_hour, [100, 300], up=2)
    add_rollup(clean, "rollup_hourly", busy, "eu-central", first_hour, [200], up=0)
    add_rollup(clean, "rollup_hourly", busy, "us-east", datetime(2026, 3, 2, 8, tzinfo=UTC), [50], up=1)
    add_result(clean, busy, "us-east", datetime(2026, 3, 2, 8, 40, tzinfo=UTC), 7777)  # its hour is rolled up
    add_result(clean, busy, "us-east", datetime(2026, 3, 2, 9, 10, tzinfo=UTC), 40)
    add_result(clean, busy, "eu-central", datetime(2026, 3, 2, 10, 5, tzinfo=UTC), None, status="timeout")

    found = aio.run(series.summaries([busy, quiet], now=NOW))

    # by hand: checks 2 + 1 + 1 + 1 + 1 = 6, up 2 + 0 + 1 + 1 + 0 = 4; responses 100, 300, 200, 50, 40
    summary = found[busy]
    assert summary.uptime24h == round(100 * 4 / 6, 3)
    assert summary.avg_response_ms24h == (100 + 300 + 200 + 50 + 40) / 5
    sparkline = {point["t"]: point["ms"] for point in summary.sparkline}
    assert list(sparkline) == [first_hour + timedelta(hours=i) for i in range(24)]
    assert sparkline[first_hour] == 200
    assert sparkline[datetime(2026, 3, 2, 8, tzinfo=UTC)] == 50
    assert sparkline[datetime(2026, 3, 2, 9, tzinfo=UTC)] == 40
    assert sparkline[datetime(2026, 3, 2, 10, tzinfo=UTC)] is None, (
        "a check that timed out has no response time"
    )
    assert sum(ms is not None for ms in sparkline.values()) == 3
    assert found[quiet].uptime24h is None and found[quiet].avg_response_ms24h is None
    assert [point["ms"] for point in found[quiet].sparkline] == [None] * 24


def test_the_list_carries_summaries_only_when_asked(project, clean):
    monitor_id = project.monitor("recent")
    add_result(clean, uuid.UUID(monitor_id), "us-east", datetime.now(UTC) - timedelta(minutes=5), 120)

    plain = project.client.get("/monitors").json()["data"][0]
    assert plain["summary"] is None
    item = project.client.get("/monitors", params={"include": "summary"}).json()["data"][0]
    assert set(item["summary"]) == {"uptime24h", "avgResponseMs24h", "sparkline"}
    assert item["summary"]["uptime24h"] == 100 and item["summary"]["avgResponseMs24h"] == 120
    assert len(item["summary"]["sparkline"]) == 24 and set(item["summary"]["sparkline"][0]) == {"t", "ms"}
    wrong = project.client.get("/monitors", params={"include": "everything"})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "include"


# --- counts per status -----------------------------------------------------------------------------------------


def test_counts_per_status_count_a_paused_monitor_as_paused(project, stranger):
    for status in ("up", "up", "down", "degraded", "pending", "unknown", "error"):
        project.monitor(f"m-{status}", status=status)
    project.monitor("paused while up", status="up", enabled=False)
    project.monitor("paused while down", status="down", enabled=False)
    stranger.monitor("not ours", status="down")

    answer = project.client.get("/monitors/summary")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "total": 9,
        "counts": {"up": 2, "down": 1, "degraded": 1, "paused": 2, "pending": 1, "unknown": 1, "error": 1},
    }
    assert sorted(project.listed(status="paused")) == ["paused while down", "paused while up"]
    assert stranger.client.get("/monitors/summary").json()["total"] == 1


def test_counts_honour_the_lists_type_tag_and_search_filters(project):
    project.monitor("shop", "https://shop.example.net/", status="up", tags=["prod"])
    project.monitor("shop staging", "https://staging.example.net/", status="down", tags=["staging"])
    project.monitor("db", "db.example.net", type="port_check", status="down", tags=["prod"])

    def counted(**params) -> dict:
        body = project.client.get("/monitors/summary", params=params).json()
        return {"total": body["total"], **{k: v for k, v in body["counts"].items() if v}}

    assert counted(type="http") == {"total": 2, "up": 1, "down": 1}
    assert counted(tag="prod") == {"total": 2, "up": 1, "down": 1}
    assert counted(search="staging") == {"total": 1, "down": 1}
    assert counted(search="db.", type="port_check") == {"total": 1, "down": 1}
    assert counted(search="nothing") == {"total": 0}
    for params, names in (({"tag": "prod"}, ["db", "shop"]), ({"search": "staging"}, ["shop staging"])):
        assert sorted(project.listed(**params)) == names


def test_lists_and_counts_see_only_the_callers_project(project, stranger):
    project.monitor("ours")
    stranger.monitor("theirs", "https://ours.example.net/")
    assert project.listed(search="ours") == ["ours"]
    assert stranger.listed(search="ours") == ["theirs"]
    assert project.client.get("/monitors/summary", params={"search": "theirs"}).json()["total"] == 0
