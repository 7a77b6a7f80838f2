"""Retention decisions as tables: configuration, cutoffs, batch plans, stream trim floors, artifacts to expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.rules.retention import (
    CleanupRequest,
    GroupState,
    RetentionConfig,
    StoredObject,
    alert_cutoff,
    artifact_owner,
    artifacts_to_delete,
    deletion_cutoff,
    floor_day,
    floor_hour,
    hourly_prune_cutoff,
    location_hourly_prune_cutoff,
    next_batch_size,
    next_window,
    provisional_due,
    results_cutoff,
    settled_hour,
    stream_cutoff,
    stream_trim_floor,
)

NOW = datetime(2025, 6, 15, 2, 0, 7, tzinfo=UTC)
RUN = "6f1c1b1e-3a43-4a59-9d7e-0d8f7f0a9b11"
MONITOR = "0a4d1f59-8a43-4f6a-a1ce-5a6d3f2f4c10"


def test_the_seed_defaults_apply_when_nothing_is_set():
    config = RetentionConfig.from_variables({})
    assert (
        config.enabled,
        config.cron,
        config.retention_days,
        config.batch_size,
        config.preserve_status_changes,
        config.safety_limit,
        config.alert_history_days,
    ) == (True, "0 2 * * *", 30, 1000, True, 1_000_000, 90)


def test_the_seed_variables_are_read_and_blank_ones_ignored():
    config = RetentionConfig.from_variables(
        {
            "MONITOR_CLEANUP_ENABLED": "false",
            "MONITOR_CLEANUP_CRON": "30 3 * * 0",
            "MONITOR_RETENTION_DAYS": "7",
            "MONITOR_CLEANUP_BATCH_SIZE": "250",
            "MONITOR_PRESERVE_STATUS_CHANGES": "no",
            "MONITOR_CLEANUP_SAFETY_LIMIT": "5000",
            "MONITOR_ALERT_HISTORY_DAYS": " ",
            "UNRELATED": "x",
        }
    )
    assert (config.enabled, config.cron, config.retention_days, config.batch_size) == (
        False,
        "30 3 * * 0",
        7,
        250,
    )
    assert (config.preserve_status_changes, config.safety_limit, config.alert_history_days) == (
        False,
        5000,
        90,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MONITOR_RETENTION_DAYS", "0", "MONITOR_RETENTION_DAYS: Input should be greater than or equal to 1"),
        ("MONITOR_RETENTION_DAYS", "thirty", "MONITOR_RETENTION_DAYS: Input should be a valid integer"),
        ("MONITOR_CLEANUP_BATCH_SIZE", "-5", "MONITOR_CLEANUP_BATCH_SIZE: Input should be greater than"),
        (
            "MONITOR_PRESERVE_STATUS_CHANGES",
            "maybe",
            "MONITOR_PRESERVE_STATUS_CHANGES: Input should be a valid boolean",
        ),
        (
            "MONITOR_CLEANUP_CRON",
            "every night",
            "MONITOR_CLEANUP_CRON: Value error, 'every night' is not a valid cron",
        ),
    ],
)
def test_a_bad_variable_fails_naming_it(variable, value, message):
    with pytest.raises(ValueError) as error:
        RetentionConfig.from_variables({variable: value})
    assert str(error.value).startswith(message)
    assert repr(value) in str(error.value)


@pytest.mark.parametrize(
    ("body", "dry_run"),
    [({}, False), ({"dryRun": True}, True), ({"dryRun": False}, False), ({"dry_run": True}, True)],
)
def test_the_request_body(body, dry_run):
    assert CleanupRequest.model_validate(body).dry_run is dry_run


@pytest.mark.parametrize("body", [{"dryRun": "perhaps"}, {"dryRun": True, "force": True}])
def test_a_bad_request_body_is_refused(body):
    with pytest.raises(ValueError):
        CleanupRequest.model_validate(body)


@pytest.mark.parametrize(
    ("moment", "hour", "day"),
    [
        (
            datetime(2025, 6, 15, 2, 0, 7, tzinfo=UTC),
            datetime(2025, 6, 15, 2, tzinfo=UTC),
            datetime(2025, 6, 15, tzinfo=UTC),
        ),
        (
            datetime(2025, 6, 15, 0, 0, tzinfo=UTC),
            datetime(2025, 6, 15, 0, tzinfo=UTC),
            datetime(2025, 6, 15, tzinfo=UTC),
        ),
        # another zone: buckets are UTC hours and days wherever the caller is
        (
            datetime(2025, 6, 15, 1, 30, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata")),
            datetime(2025, 6, 15, 1, tzinfo=UTC),
            datetime(2025, 6, 15, tzinfo=UTC),
        ),
    ],
)
def test_buckets_are_utc_hours_and_days(moment, hour, day):
    assert floor_hour(moment) == hour and floor_day(moment) == day


def test_the_results_cutoff_keeps_at_least_the_retention_and_falls_on_a_utc_day():
    assert results_cutoff(NOW, 30) == datetime(2025, 5, 16, tzinfo=UTC)
    assert NOW - results_cutoff(NOW, 30) >= timedelta(days=30)
    assert results_cutoff(datetime(2025, 6, 15, 23, 59, tzinfo=UTC), 1) == datetime(2025, 6, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("retention", "daily_through", "expected"),
    [
        (datetime(2025, 5, 16, tzinfo=UTC), None, None),  # nothing rolled up: nothing may go
        (
            datetime(2025, 5, 16, tzinfo=UTC),
            datetime(2025, 6, 14, tzinfo=UTC),
            datetime(2025, 5, 16, tzinfo=UTC),
        ),
        (
            datetime(2025, 5, 16, tzinfo=UTC),
            datetime(2025, 5, 10, tzinfo=UTC),
            datetime(2025, 5, 10, tzinfo=UTC),
        ),
    ],
)
def test_deletion_never_passes_the_rollups(retention, daily_through, expected):
    assert deletion_cutoff(retention, daily_through) == expected


def test_an_hour_is_rolled_up_only_once_it_has_settled():
    assert settled_hour(datetime(2025, 6, 15, 2, 14, tzinfo=UTC), 15) == datetime(2025, 6, 15, 1, tzinfo=UTC)
    assert settled_hour(datetime(2025, 6, 15, 2, 15, tzinfo=UTC), 15) == datetime(2025, 6, 15, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hourly_days", "raw_from", "expected"),
    [
        (90, None, None),  # raw data never deleted: the hourly tier stays
        (90, datetime(2025, 5, 16, tzinfo=UTC), datetime(2025, 3, 17, tzinfo=UTC)),
        (
            7,
            datetime(2025, 5, 16, tzinfo=UTC),
            datetime(2025, 5, 16, tzinfo=UTC),
        ),  # not where raw rows remain
    ],
)
def test_the_hourly_tier_thins_out_only_behind_the_raw_data(hourly_days, raw_from, expected):
    assert hourly_prune_cutoff(NOW, hourly_days, raw_from) == expected


@pytest.mark.parametrize(
    ("hourly_days", "expected"),
    [
        (90, datetime(2025, 3, 17, tzinfo=UTC)),  # with the per-monitor hours
        (7, datetime(2025, 5, 15, tzinfo=UTC)),  # never inside /regions' 720 hours (and a day's margin)
    ],
)
def test_location_hours_thin_out_with_the_hourly_tier_but_never_inside_the_regions_window(
    hourly_days, expected
):
    prune = hourly_prune_cutoff(NOW, hourly_days, datetime(2025, 5, 16, tzinfo=UTC))
    assert location_hourly_prune_cutoff(NOW, prune) == expected


@pytest.mark.parametrize(
    ("hourly_through", "settle_minutes", "due"),
    [
        (datetime(2025, 6, 15, 1, tzinfo=UTC), 15, True),  # steady stepping: the hour before last
        (datetime(2025, 6, 14, 23, 46, tzinfo=UTC), 15, True),  # just inside settle time + 2 h
        (datetime(2025, 6, 14, 23, tzinfo=UTC), 15, False),  # catching up: no provisional rewrite
        (datetime(2025, 6, 14, 20, tzinfo=UTC), 6 * 60, True),  # a long settle time keeps them due
    ],
)
def test_provisional_hours_are_rewritten_only_while_the_hourly_tier_is_near_now(
    hourly_through, settle_minutes, due
):
    assert provisional_due(NOW, hourly_through, settle_minutes) is due


def test_alert_history_is_kept_ninety_days():
    assert alert_cutoff(NOW, 90) == NOW - timedelta(days=90)


@pytest.mark.parametrize(
    ("done", "batch", "limit", "expected"),
    [
        (0, 1000, 1_000_000, 1000),
        (999_500, 1000, 1_000_000, 500),
        (1_000_000, 1000, 1_000_000, 0),
        (7, 10, 5, 0),
    ],
)
def test_batches_stop_at_the_safety_limit(done, batch, limit, expected):
    assert next_batch_size(done, batch, limit) == expected


def test_rollup_steps_are_small_and_end_when_caught_up():
    start = datetime(2025, 6, 1, tzinfo=UTC)
    assert next_window(start, start + timedelta(hours=5), timedelta(hours=1), 2) == start + timedelta(hours=2)
    assert next_window(start, start + timedelta(hours=1), timedelta(hours=1), 2) == start + timedelta(hours=1)
    assert next_window(start, start, timedelta(hours=1), 2) is None


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


CUTOFF = NOW - timedelta(hours=24)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([], f"{ms(CUTOFF)}-0"),  # no consumer group: by age alone
        ([GroupState("g", f"{ms(NOW)}-3", 0, None)], f"{ms(CUTOFF)}-0"),  # all delivered and acknowledged
        ([GroupState("g", f"{ms(NOW)}-3", 2, "1000-4")], "1000-4"),  # never past a pending entry
        ([GroupState("g", "1500-2", 0, None)], "1500-3"),  # never past an entry not yet delivered
        ([GroupState("g", "0-0", 0, None)], "0-1"),  # a group that has read nothing keeps everything
        (
            [GroupState("a", f"{ms(NOW)}-0", 1, "2000-0"), GroupState("b", "1999-9", 0, None)],
            "1999-10",  # the slowest group decides
        ),
    ],
)
def test_the_stream_trim_floor(groups, expected):
    assert stream_trim_floor(CUTOFF, groups) == expected


def test_dead_letters_are_kept_as_long_as_raw_results():
    config = RetentionConfig()
    assert stream_cutoff("sc:jobs:http_request:us-east", NOW, config) == NOW - timedelta(hours=24)
    assert stream_cutoff("sc:jobs:http_request:us-east:dead", NOW, config) == NOW - timedelta(days=30)


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        (f"synthetic/{MONITOR}/{RUN}/us-east/trace.zip", (RUN, "us-east")),
        (f"synthetic/{MONITOR}/{RUN.upper()}/eu-central/shots/final.png", (RUN, "eu-central")),
        (f"synthetic/{MONITOR}/not-a-uuid/us-east/trace.zip", None),
        (f"reports/{MONITOR}/{RUN}/us-east/trace.zip", None),
        (f"synthetic/{MONITOR}/{RUN}", None),
    ],
)
def test_an_artifact_key_names_its_result(key, owner):
    assert artifact_owner(key) == owner


def test_old_artifacts_go_except_those_of_a_kept_status_change():
    cutoff = NOW - timedelta(days=30)
    old, new = cutoff - timedelta(seconds=1), cutoff
    objects = [
        StoredObject(f"synthetic/{MONITOR}/{RUN}/us-east/trace.zip", old),
        StoredObject(f"synthetic/{MONITOR}/{RUN}/eu-central/trace.zip", old),
        StoredObject(f"synthetic/{MONITOR}/{RUN}/asia-pacific/trace.zip", new),
        StoredObject("synthetic/stray-file.txt", old),
    ]
    assert artifacts_to_delete(objects, cutoff, kept_results={(RUN, "us-east")}) == [
        f"synthetic/{MONITOR}/{RUN}/eu-central/trace.zip",
        "synthetic/stray-file.txt",
    ]
