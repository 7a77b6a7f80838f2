"""The telemetry contract: a Tally written to real Redis hashes reads back as the counters and cumulative histogram
buckets the metrics function exposes, summed over servers; a wrong label set is refused where it is counted."""

from __future__ import annotations

import pytest

from openfaas.local.services import embedded_redis
from shared.metrics.pipeline import parse_backlogs, redis_servers, telemetry_families
from shared.settings import Settings
from shared.telemetry import (
    METRICS,
    MetricSpec,
    Tally,
    merge_hashes,
    read_counter,
    read_histogram,
    telemetry_stats,
)

LAG = METRICS["supercheck_schedule_lag_seconds"]
FINALIZED = METRICS["supercheck_runs_finalized"]
EDGES = (0.1, 1.0, 10.0)
SMALL = MetricSpec("supercheck_test_seconds", "histogram", "A test histogram.", ("type",), EDGES)


def stored(r, spec: MetricSpec) -> dict[str, str]:
    return r.hgetall(spec.key)


def flush(aio, tally: Tally, url: str | None = None) -> bool:
    return aio.run(tally.flush(url))


@pytest.mark.parametrize(
    ("values", "expected_buckets"),
    [
        # a value on an edge falls in that edge's bucket (le: less or equal)
        ([0.1], [("0.1", 1), ("1.0", 1), ("10.0", 1), ("+Inf", 1)]),
        ([0.1000001], [("0.1", 0), ("1.0", 1), ("10.0", 1), ("+Inf", 1)]),
        ([0.0, 1.0, 10.0], [("0.1", 1), ("1.0", 2), ("10.0", 3), ("+Inf", 3)]),
        # above the last edge: +Inf only
        ([11.0, 500.0], [("0.1", 0), ("1.0", 0), ("10.0", 0), ("+Inf", 2)]),
        ([0.05, 0.5, 5.0, 50.0], [("0.1", 1), ("1.0", 2), ("10.0", 3), ("+Inf", 4)]),
    ],
)
def test_histogram_buckets_are_cumulative_with_values_on_an_edge_counted_in_it(
    clean, aio, monkeypatch, values, expected_buckets
):
    monkeypatch.setitem(METRICS, SMALL.name, SMALL)
    tally = Tally()
    for value in values:
        tally.observe(SMALL.name, value, type="http_request")
    assert flush(aio, tally)
    (value,) = read_histogram(SMALL, stored(clean.redis(), SMALL)).values()
    assert value.buckets == expected_buckets
    assert value.sum == pytest.approx(sum(values))


def test_counters_add_up_over_flushes_and_label_sets_stay_apart(clean, aio):
    first, second = Tally(), Tally()
    first.count(FINALIZED.name, late="false")
    first.count(FINALIZED.name, 2, late="false")
    first.count(FINALIZED.name, late="true")
    second.count(FINALIZED.name, 4, late="false")
    second.count(FINALIZED.name, 0, late="true")  # zero: nothing written
    assert flush(aio, first) and flush(aio, second)
    assert read_counter(FINALIZED, stored(clean.redis(), FINALIZED)) == {("false",): 7.0, ("true",): 1.0}
    assert not first and not second, "a flush clears what it wrote"


def test_a_metric_without_labels_is_one_series(clean, aio):
    tally = Tally()
    tally.count("supercheck_schedule_ticks")
    tally.count("supercheck_schedule_ticks")
    assert flush(aio, tally)
    ticks = METRICS["supercheck_schedule_ticks"]
    assert read_counter(ticks, stored(clean.redis(), ticks)) == {(): 2.0}


def test_fractional_amounts_are_kept(clean, aio):
    tally = Tally()
    tally.observe(LAG.name, 0.0125, type="port_check", location="us-east")
    tally.observe(LAG.name, 0.0125, type="port_check", location="us-east")
    assert flush(aio, tally)
    (value,) = read_histogram(LAG, stored(clean.redis(), LAG)).values()
    assert value.sum == pytest.approx(0.025)
    assert dict(value.buckets)["0.025"] == 2 and dict(value.buckets)["0.01"] == 0


@pytest.mark.parametrize(
    ("metric", "labels"),
    [
        ("supercheck_runs_finalized", {}),
        ("supercheck_runs_finalized", {"late": "true", "location": "us-east"}),
        ("supercheck_schedule_lag_seconds", {"type": "http_request"}),
        ("supercheck_monitor_checks", {"monitor_id": "m", "location": "us-east", "status": "up"}),
    ],
)
def test_a_wrong_label_set_is_refused_where_it_is_counted(metric, labels):
    tally = Tally()
    with pytest.raises(ValueError, match="takes labels"):
        if METRICS[metric].kind == "counter":
            tally.count(metric, **labels)
        else:
            tally.observe(metric, 1.0, **labels)
    assert not tally


def test_a_counter_is_not_observed_nor_a_histogram_counted():
    with pytest.raises(ValueError, match="not a histogram"):
        Tally().observe(FINALIZED.name, 1.0, late="true")
    with pytest.raises(ValueError, match="not a counter"):
        Tally().count(LAG.name, type="http_request", location="us-east")


def test_two_servers_hashes_sum_per_series_and_bucket(clean, aio, tmp_path):
    other = embedded_redis(tmp_path / "second-redis")
    try:
        here, there = Tally(), Tally()
        for tally, lags in ((here, [0.005, 0.2]), (there, [0.2, 400.0])):
            for lag in lags:
                tally.observe(LAG.name, lag, type="http_request", location="eu-central")
            tally.count(FINALIZED.name, 3, late="false")
        assert flush(aio, here) and flush(aio, there, other.url)
        import redis

        second = redis.Redis.from_url(other.url, decode_responses=True)
        merged_lag = merge_hashes([stored(clean.redis(), LAG), stored(second, LAG)])
        merged_runs = merge_hashes([stored(clean.redis(), FINALIZED), stored(second, FINALIZED)])
    finally:
        other.stop()
    (lag,) = read_histogram(LAG, merged_lag).values()
    buckets = dict(lag.buckets)
    assert (buckets["0.25"], buckets["300.0"], buckets["+Inf"]) == (3, 3, 4)
    assert buckets["0.01"] == 1, "0.005 is below the first edge (0.01)"
    assert lag.sum == pytest.approx(400.405)
    assert read_counter(FINALIZED, merged_runs) == {("false",): 6.0}


def test_a_redis_that_refuses_drops_the_flush_without_raising(aio):
    tally = Tally()
    tally.count(FINALIZED.name, late="true")
    before = telemetry_stats.dropped_flushes
    assert flush(aio, tally, "redis://127.0.0.1:1/0") is False
    assert telemetry_stats.dropped_flushes == before + 1


def test_fields_of_another_shape_are_skipped_not_misread():
    assert read_counter(FINALIZED, {"true": "2", "a\x1fb": "5", "true\x1ecount": "1"}) == {("true",): 2.0}
    assert read_histogram(LAG, {"only-one-label\x1ecount": "1"}) == {}


def test_families_carry_the_spec_names_labels_and_cumulative_buckets():
    hashes = {
        FINALIZED.name: {"true": "2"},
        LAG.name: {
            "http_request\x1fus-east\x1ecount": "3",
            "http_request\x1fus-east\x1esum": "0.5",
            "http_request\x1fus-east\x1eb0": "1",
            "http_request\x1fus-east\x1eb5": "1",
        },
    }
    runs, lag = telemetry_families([FINALIZED, LAG], hashes)
    assert [(s.name, s.labels, s.value) for s in runs.samples] == [
        ("supercheck_runs_finalized_total", {"late": "true"}, 2.0)
    ]
    buckets = {s.labels["le"]: s.value for s in lag.samples if s.name.endswith("_bucket")}
    assert buckets["0.01"] == 1 and buckets["0.25"] == 1 and buckets["0.5"] == 2 and buckets["+Inf"] == 3
    assert {s.name: s.value for s in lag.samples if not s.name.endswith("_bucket")} == {
        "supercheck_schedule_lag_seconds_count": 3.0,
        "supercheck_schedule_lag_seconds_sum": 0.5,
    }


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        ({}, ["primary"]),
        ({"eu-central": "redis://eu/0"}, ["primary", "eu-central"]),
        # a location sharing the primary's Redis adds no server; locations sharing one are named together
        (
            {"us-east": "redis://main/0", "eu-central": "redis://eu/0", "asia-pacific": "redis://eu/0"},
            ["primary", "asia-pacific,eu-central"],
        ),
    ],
)
def test_each_redis_is_read_once_and_named_by_what_it_serves_never_its_url(regions, expected):
    settings = Settings(database_url=None, redis_url="redis://main/0", region_redis_urls=regions)
    assert [server.name for server in redis_servers(settings)] == expected


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        # Redis 7 counts the lag; an unread entry 1.5 s old on Redis' clock
        ([["sc-connector", 2, 5, "998500-0"]], [("sc-connector", 2, 5, 1.5)]),
        # Redis 6.2 says nothing: 0 when caught up, unknown (None) while behind
        ([["sc-connector", 0, -1, ""]], [("sc-connector", 0, 0, 0.0)]),
        ([["sc-connector", 0, -1, "999000-3"]], [("sc-connector", 0, None, 1.0)]),
        # an entry id from a clock ahead of Redis' is not a negative age
        ([["sc-connector", 0, 1, "1000500-0"]], [("sc-connector", 0, 1, 0.0)]),
        ([], []),
    ],
)
def test_backlogs_read_lag_and_the_age_of_the_oldest_unread_entry(groups, expected):
    (backlog,) = parse_backlogs(["sc:results"], [[1000, 0], [7, 1, *groups]]).values()
    assert (backlog.length, backlog.dead_letters) == (7, 1)
    assert [(g.group, g.pending, g.lag, g.unread_age_seconds) for g in backlog.groups] == expected
