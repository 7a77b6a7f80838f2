"""A monitor's response-time series and TLS certificate for the dashboard's detail page: which tier answers each
part of a range (a table), figures against hand computations over seeded rollups and raw results (no result
counted twice at a watermark), timing phases, and the certificate a real loopback HTTPS check recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.api.services import series
from shared.checks.fetch import tls_context
from shared.models import CheckJob
from shared.pipeline.check import execute_jobs
from shared.rules.retention import percentile_cont
from shared.rules.series import PLANS, Segment, plan_segments
from tests.api_client import ApiClient
from tests.check_servers import TEST_AUTHORITY, RouteServer
from tests.factories import add_result, add_rollup, make_project, set_marks

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
HOURLY_THROUGH = datetime(2026, 3, 2, 9, tzinfo=UTC)  # every hour before 09:00 is in the hourly tier
DAILY_THROUGH = datetime(2026, 3, 2, tzinfo=UTC)  # every day before 2 March is in the daily tier
AUTHORITY = TEST_AUTHORITY


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def raw(start: datetime, end: datetime) -> Segment:
    return Segment("raw", start, end, whole_buckets=False)


@pytest.mark.parametrize(
    ("range_name", "hourly_through", "daily_through", "expected"),
    [
        ("1h", HOURLY_THROUGH, DAILY_THROUGH, [raw(NOW - timedelta(hours=1), NOW)]),
        ("24h", HOURLY_THROUGH, DAILY_THROUGH, [raw(at(1, 10, 15), NOW)]),
        (
            "7d",
            HOURLY_THROUGH,
            DAILY_THROUGH,
            [
                Segment("hourly", datetime(2026, 2, 23, 10, tzinfo=UTC), HOURLY_THROUGH, True),
                raw(HOURLY_THROUGH, NOW),
            ],
        ),
        (
            "30d",
            HOURLY_THROUGH,
            DAILY_THROUGH,
            [
                Segment("daily", datetime(2026, 1, 31, tzinfo=UTC), DAILY_THROUGH, True),
                Segment("hourly", DAILY_THROUGH, HOURLY_THROUGH, False),
                raw(HOURLY_THROUGH, NOW),
            ],
        ),
        (
            "90d",
            HOURLY_THROUGH,
            DAILY_THROUGH,
            [
                Segment("daily", datetime(2025, 12, 2, tzinfo=UTC), DAILY_THROUGH, True),
                Segment("hourly", DAILY_THROUGH, HOURLY_THROUGH, False),
                raw(HOURLY_THROUGH, NOW),
            ],
        ),
        # nothing rolled up yet: raw results answer the whole range
        ("7d", None, None, [raw(datetime(2026, 2, 23, 10, tzinfo=UTC), NOW)]),
        ("30d", None, None, [raw(datetime(2026, 1, 31, tzinfo=UTC), NOW)]),
        # the daily tier not started but the hourly one has: hourly rows merged into days, then raw
        (
            "30d",
            HOURLY_THROUGH,
            None,
            [
                Segment("hourly", datetime(2026, 1, 31, tzinfo=UTC), HOURLY_THROUGH, False),
                raw(HOURLY_THROUGH, NOW),
            ],
        ),
        # a watermark before the range's start reads the finer tier from the start
        ("7d", NOW - timedelta(days=10), None, [raw(datetime(2026, 2, 23, 10, tzinfo=UTC), NOW)]),
    ],
)
def test_each_range_reads_its_tiers_up_to_their_watermarks(
    range_name, hourly_through, daily_through, expected
):
    assert plan_segments(PLANS[range_name], NOW, hourly_through, daily_through) == expected


def test_every_range_has_a_plan():
    from typing import get_args

    from shared.api.requests import SeriesRange

    assert set(get_args(SeriesRange)) == set(PLANS)


# --- figures against seeded rollups and raw results -----------------------------------------------------------


@pytest.fixture
def monitor(clean, aio):
    """An https monitor of a project of its own; (project id, monitor id, that project's client)."""
    name = f"series {uuid.uuid4()}"  # projects outlive `clean`: a name of its own finds this one
    key = make_project(aio, name)
    project_id = clean.sql("select id from projects where name = %s", (name,))[0][0]
    monitor_id = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'shop', 'http_request', 'https://shop.example.net/', 5) returning id""",
        (project_id,),
    )[0][0]
    return project_id, monitor_id, ApiClient(aio, key)


def points_of(report, location: str = "us-east") -> dict[datetime, dict]:
    located = [entry for entry in report.locations if entry.location == location]
    return {point["t"]: dict(point) for point in located[0].points} if located else {}


def test_7d_takes_hourly_rollups_before_the_watermark_and_raw_results_after_it(monitor, clean, aio):
    project_id, monitor_id, _ = monitor
    set_marks(clean, rollup_hourly_through=HOURLY_THROUGH, rollup_daily_through=DAILY_THROUGH)
    add_rollup(clean, "rollup_hourly", monitor_id, "us-east", at(2, 7), [50], up=1)
    add_rollup(clean, "rollup_hourly", monitor_id, "us-east", at(2, 8), [100, 200, 300], up=2)
    add_result(
        clean, monitor_id, "us-east", at(2, 8, 30), 5000
    )  # in a rolled-up hour: counted by its rollup only
    add_result(clean, monitor_id, "us-east", at(2, 9, 5), 40)
    add_result(clean, monitor_id, "us-east", at(2, 9, 50), 60, status="down")
    add_result(clean, monitor_id, "us-east", at(2, 10, 10), 80)

    report = aio.run(series.response_times(project_id, monitor_id, "7d", now=NOW))

    assert report.bucket_seconds == 3600
    assert [(s.source, s.start, s.end) for s in report.sources] == [
        ("hourly", datetime(2026, 2, 23, 10, tzinfo=UTC), HOURLY_THROUGH),
        ("raw", HOURLY_THROUGH, NOW),
    ]
    assert points_of(report) == {
        at(2, 7): dict(t=at(2, 7), avg_ms=50, p95_ms=50, min_ms=50, max_ms=50, checks=1, up_checks=1),
        at(2, 8): dict(t=at(2, 8), avg_ms=200, p95_ms=290, min_ms=100, max_ms=300, checks=3, up_checks=2),
        at(2, 9): dict(t=at(2, 9), avg_ms=50, p95_ms=59, min_ms=40, max_ms=60, checks=2, up_checks=1),
        at(2, 10): dict(t=at(2, 10), avg_ms=80, p95_ms=80, min_ms=80, max_ms=80, checks=1, up_checks=1),
    }


def test_30d_merges_the_unrolled_day_from_hourly_rollups_and_raw_results_without_counting_either_twice(
    monitor, clean, aio
):
    project_id, monitor_id, _ = monitor
    set_marks(clean, rollup_hourly_through=HOURLY_THROUGH, rollup_daily_through=DAILY_THROUGH)
    add_rollup(clean, "rollup_daily", monitor_id, "us-east", at(1, 0), [10, 20, 30, 40], up=4)
    add_rollup(
        clean, "rollup_hourly", monitor_id, "us-east", at(1, 23), [999], up=1
    )  # in the daily row already
    add_rollup(clean, "rollup_hourly", monitor_id, "us-east", at(2, 3), [100, 300], up=1)
    add_result(clean, monitor_id, "us-east", at(1, 23, 30), 888)  # before both watermarks
    add_result(clean, monitor_id, "us-east", at(2, 8, 30), 777)  # before the hourly watermark
    add_result(clean, monitor_id, "us-east", at(2, 9, 10), 200)
    add_result(clean, monitor_id, "eu-central", at(2, 10, 0), 70, status="timeout")

    report = aio.run(series.response_times(project_id, monitor_id, "30d", now=NOW))

    assert report.bucket_seconds == 86400
    assert [s.source for s in report.sources] == ["daily", "hourly", "raw"]
    day_before = percentile_cont([(10, 1), (20, 1), (30, 1), (40, 1)], 0.95)
    merged_p95 = percentile_cont([(100, 1), (200, 1), (300, 1)], 0.95)
    assert points_of(report) == {
        at(1, 0): dict(
            t=at(1, 0), avg_ms=25, p95_ms=round(day_before, 2), min_ms=10, max_ms=40, checks=4, up_checks=4
        ),
        at(2, 0): dict(
            t=at(2, 0), avg_ms=200, p95_ms=round(merged_p95, 2), min_ms=100, max_ms=300, checks=3, up_checks=2
        ),
    }
    assert points_of(report, "eu-central") == {
        at(2, 0): dict(t=at(2, 0), avg_ms=70, p95_ms=70, min_ms=70, max_ms=70, checks=1, up_checks=0)
    }


def test_90d_reads_the_daily_tier_back_to_its_first_day(monitor, clean, aio):
    project_id, monitor_id, _ = monitor
    set_marks(clean, rollup_hourly_through=HOURLY_THROUGH, rollup_daily_through=DAILY_THROUGH)
    first_day, too_old = datetime(2025, 12, 2, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC)
    add_rollup(clean, "rollup_daily", monitor_id, "us-east", first_day, [10], up=1)
    add_rollup(clean, "rollup_daily", monitor_id, "us-east", too_old, [10], up=1)

    report = aio.run(series.response_times(project_id, monitor_id, "90d", now=NOW))

    assert report.since == first_day and list(points_of(report)) == [first_day]


def test_1h_gives_one_point_per_result_and_24h_quarter_hours_with_phases_over_the_whole_range(
    monitor, clean, aio
):
    project_id, monitor_id, _ = monitor
    set_marks(clean, raw_complete_from=NOW - timedelta(minutes=90))
    add_result(clean, monitor_id, "us-east", NOW - timedelta(hours=2), 300, phases=(9, 9, 9, 9))
    add_result(clean, monitor_id, "us-east", at(2, 9, 31), 120, phases=(1, 2, 3, 4))
    add_result(clean, monitor_id, "us-east", at(2, 9, 40), 80, phases=(3, 4, None, 6))
    add_result(clean, monitor_id, "us-east", at(2, 10, 5), 50, status="down", phases=(5, 6, 7, 8))

    hour = aio.run(series.response_times(project_id, monitor_id, "1h", now=NOW))
    day = aio.run(series.response_times(project_id, monitor_id, "24h", now=NOW))

    assert hour.bucket_seconds is None and [s.source for s in hour.sources] == ["raw"]
    assert [(p["t"], p["avg_ms"], p["checks"], p["up_checks"]) for p in hour.locations[0].points] == [
        (at(2, 9, 31), 120, 1, 1),
        (at(2, 9, 40), 80, 1, 1),
        (at(2, 10, 5), 50, 1, 0),
    ]
    assert [(p["t"], p["dns_ms"], p["tls_ms"]) for p in hour.locations[0].phases] == [
        (at(2, 9, 31), 1, 3),
        (at(2, 9, 40), 3, None),
        (at(2, 10, 5), 5, 7),
    ]
    assert day.bucket_seconds == 900 and day.since == at(1, 10, 15)
    assert {p["t"]: (p["avg_ms"], p["checks"]) for p in day.locations[0].points} == {
        at(2, 8, 15): (300, 1),
        at(2, 9, 30): (100, 2),
        at(2, 10): (50, 1),
    }
    # phases come from the tiers the response times come from, over the whole range
    assert day.phases_from == day.since
    assert [dict(p) for p in day.locations[0].phases] == [
        dict(t=at(2, 8, 15), dns_ms=9, connect_ms=9, tls_ms=9, first_byte_ms=9),
        dict(t=at(2, 9, 30), dns_ms=2, connect_ms=3, tls_ms=3, first_byte_ms=5),
        dict(t=at(2, 10), dns_ms=5, connect_ms=6, tls_ms=7, first_byte_ms=8),
    ]


def test_30d_phases_come_from_the_rollups_and_equal_the_raw_means_after_the_raw_rows_are_gone(
    monitor, clean, aio
):
    from shared.pipeline import rollups
    from shared.rules.retention import RetentionConfig

    project_id, monitor_id, _ = monitor
    for day_of_month, hour, phases in [
        (26, 3, (1.5, 10, 20, 30)),
        (26, 17, (2.5, 12, None, 50)),
        (27, 8, (4, 14, 22, 60)),
        (28, 23, (None, None, None, None)),  # a result without phases: a bucket with no phase values
        (1, 0, (3, 9, 18, 27)),
        (2, 2, (6, 11, 33, 44)),
        (2, 9, (7, 13, 35, 48)),  # after the hourly watermark of 09:00 (settled: 10:20 - 15 min)
    ]:
        checked_at = datetime(2026, 2 if day_of_month > 2 else 3, day_of_month, hour, 5, tzinfo=UTC)
        add_result(clean, monitor_id, "us-east", checked_at, 100, phases=phases)
    expected = clean.sql(
        """select date_bin('1 day', checked_at, %s), avg(dns_ms), avg(connect_ms), avg(tls_ms), avg(first_byte_ms)
           from monitor_results where monitor_id = %s group by 1 order by 1""",
        (rollups.UTC_ORIGIN, monitor_id),
    )
    aio.run(rollups.catch_up(NOW, RetentionConfig()))
    # what cleanup does: raw rows behind the daily watermark go, and reads take rollups there
    clean.sql("delete from monitor_results where checked_at < %s", (DAILY_THROUGH,))
    set_marks(clean, raw_complete_from=DAILY_THROUGH)

    report = aio.run(series.response_times(project_id, monitor_id, "30d", now=NOW))

    assert [s.source for s in report.sources] == ["daily", "hourly", "raw"]
    assert report.phases_from == report.since
    assert [
        (p["t"], p["dns_ms"], p["connect_ms"], p["tls_ms"], p["first_byte_ms"])
        for p in report.locations[0].phases
    ] == [(t, *(None if v is None else round(v, 2) for v in means)) for t, *means in expected]


def test_a_bucket_rolled_up_before_phases_were_kept_has_no_phase_point(monitor, clean, aio):
    project_id, monitor_id, _ = monitor
    set_marks(clean, rollup_hourly_through=HOURLY_THROUGH, rollup_daily_through=DAILY_THROUGH)
    add_rollup(clean, "rollup_daily", monitor_id, "us-east", at(1, 0), [10, 20], up=2)  # null phase counts
    add_result(clean, monitor_id, "us-east", at(2, 9, 30), 50, phases=(1, 2, 3, 4))

    report = aio.run(series.response_times(project_id, monitor_id, "30d", now=NOW))

    assert list(points_of(report)) == [at(1, 0), at(2, 0)]
    assert [p["t"] for p in report.locations[0].phases] == [at(2, 0)]


def test_the_response_times_endpoint_validates_its_range_and_is_scoped_to_the_project(monitor, clean, aio):
    _, monitor_id, client = monitor
    answer = client.get(f"/monitors/{monitor_id}/response-times", params={"range": "7d"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {
        "monitorId",
        "range",
        "since",
        "until",
        "bucketSeconds",
        "sources",
        "phasesFrom",
        "locations",
    }
    assert body["range"] == "7d" and body["bucketSeconds"] == 3600 and body["locations"] == []
    assert client.get(f"/monitors/{monitor_id}/response-times").json()["range"] == "24h"
    add_result(
        clean, monitor_id, "us-east", datetime.now(UTC) - timedelta(minutes=5), 42, phases=(1, 2, 3, 4)
    )
    (located,) = client.get(f"/monitors/{monitor_id}/response-times", params={"range": "1h"}).json()[
        "locations"
    ]
    assert set(located) == {"location", "points", "phases"}
    assert set(located["points"][0]) == {"t", "avgMs", "p95Ms", "minMs", "maxMs", "checks", "upChecks"}
    assert set(located["phases"][0]) == {"t", "dnsMs", "connectMs", "tlsMs", "firstByteMs"}
    assert located["points"][0]["avgMs"] == 42 and located["phases"][0]["firstByteMs"] == 4
    wrong = client.get(f"/monitors/{monitor_id}/response-times", params={"range": "2d"})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "range"
    stranger = ApiClient(aio, make_project(aio, "stranger"))
    assert stranger.get(f"/monitors/{monitor_id}/response-times").status_code == 404
    assert stranger.get(f"/monitors/{monitor_id}/certificate").status_code == 404


# --- the certificate ---------------------------------------------------------------------------------------


@pytest.fixture
def https_target(internal_targets):
    tls_context().load_verify_locations(cadata=AUTHORITY.pem)
    server = RouteServer(credential=AUTHORITY.issue_for_days(200)).start()
    yield server
    server.stop()


def run_website_check(infra, aio, monitor_id, target: str, location: str) -> None:
    """One website check of the target from `location`, stored as the check function stores it."""
    now = datetime.now(UTC)
    run_id = infra.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, %s, %s) returning id""",
        (monitor_id, now, [location], now + timedelta(minutes=1)),
    )[0][0]
    job = CheckJob(
        run_id=run_id,
        monitor_id=monitor_id,
        location=location,
        type="website",
        target=target,
        config={},
        scheduled_at=now,
        deadline=now + timedelta(minutes=1),
    )
    ran, left = aio.run(execute_jobs([job]))
    assert (ran, left) == (1, [])


def test_the_certificate_is_what_a_real_https_check_recorded_per_location(https_target, monitor, clean, aio):
    project_id, _, client = monitor
    target = https_target.url("/")
    monitor_id = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'tls', 'website', %s, 5) returning id""",
        (project_id, target),
    )[0][0]
    run_website_check(clean, aio, monitor_id, target, "us-east")
    run_website_check(clean, aio, monitor_id, target, "us-east")  # not due again: records no facts
    assert clean.sql(
        "select count(*) filter (where details -> 'ssl' ? 'validTo') from monitor_results where monitor_id = %s",
        (monitor_id,),
    ) == [(1,)]

    answer = client.get(f"/monitors/{monitor_id}/certificate")

    assert answer.status_code == 200, answer.text
    (certificate,) = answer.json()["certificates"]
    assert certificate["location"] == "us-east"
    assert certificate["issuer"] == "CN=Supercheck Test CA" and certificate["subject"] == "CN=localhost"
    assert certificate["sans"] == ["localhost", "127.0.0.1", "::1"]
    assert certificate["daysRemaining"] == 200 and certificate["expired"] is False
    not_after = datetime.fromisoformat(certificate["notAfter"])
    assert timedelta(days=199) < not_after - datetime.now(UTC) <= timedelta(days=200)
    assert set(certificate) >= {"checkedAt", "notBefore", "serialNumber", "sha256Fingerprint"}


def test_a_monitor_without_tls_has_no_certificate(monitor, clean):
    project_id, _, client = monitor
    plain = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'plain', 'http_request', 'http://shop.example.net/', 5) returning id""",
        (project_id,),
    )[0][0]
    ping = clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           values (%s, 'ping', 'ping_host', 'shop.example.net', 5) returning id""",
        (project_id,),
    )[0][0]
    for monitor_id in (plain, ping):
        assert client.get(f"/monitors/{monitor_id}/certificate").json() == {
            "monitorId": str(monitor_id),
            "certificates": None,
        }


def test_an_https_monitor_never_checked_has_no_certificates_yet(monitor):
    _, monitor_id, client = monitor
    assert client.get(f"/monitors/{monitor_id}/certificate").json()["certificates"] == []


def test_a_monitor_id_that_is_not_a_uuid_is_not_found(monitor):
    _, _, client = monitor
    assert client.get(f"/monitors/{uuid.uuid4()}/certificate").status_code == 404
    assert client.get("/monitors/not-a-uuid/response-times").status_code == 404
