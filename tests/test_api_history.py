"""The dashboard's history reads (issue 17): alert history (GET /alerts, /monitors/{id}/alerts), a monitor's
incidents (GET /monitors/{id}/incidents) and the regional figures (GET /regions). Real Postgres; rows are
seeded in SQL where the pipeline would take minutes to make them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.types.json import Jsonb

from shared import db
from shared.api.requests import IncidentsQuery
from shared.api.services.incidents import incident_page
from shared.api.services.regions import regions_report
from shared.pipeline import rollups
from shared.pipeline.rollups import DAILY_MARK, HOURLY_MARK
from shared.rules.retention import (
    percentile_cont,
    regions_window,
    whole_days_within,
)
from shared.security import masked_text
from tests.api_client import ApiClient
from tests.factories import add_provider, make_project

NOW = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
WEBHOOK_TOKEN = "whk-5f4e3d2c1b0a9f8e7d6c"
SMTP_PASSWORD = "smtp-pw-0a1b2c3d4e5f"
BOT_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


# --- builders -------------------------------------------------------------------------------------------------


def project_of(client: ApiClient) -> uuid.UUID:
    return uuid.UUID(client.get("/project").json()["id"])


def add_monitor(infra, project_id: uuid.UUID, name: str, enabled: bool = True) -> uuid.UUID:
    return infra.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, enabled)
           values (%s, %s, 'http_request', 'https://shop.example.net/', 1, %s) returning id""",
        (project_id, name, enabled),
    )[0][0]


def add_run(infra, monitor_id: uuid.UUID, at: datetime) -> uuid.UUID:
    return infra.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, '{us-east}', %s) returning id""",
        (monitor_id, at, at + timedelta(minutes=1)),
    )[0][0]


def add_delivery(
    infra,
    monitor_id: uuid.UUID,
    provider_id: uuid.UUID,
    created_at: datetime,
    kind: str = "failure",
    status: str = "sent",
    error: str | None = None,
    recipients: dict | None = None,
) -> int:
    return infra.sql(
        """insert into alert_history (monitor_id, run_id, provider_id, kind, status, attempts, title, message,
                                      error, recipients, created_at, claimed_at, sent_at)
           values (%s, %s, %s, %s, %s, 1, 'Monitor Down - Checkout', 'down', %s, %s, %s, %s,
                   case when %s <> 'failed' then %s end)
           returning id""",
        (
            monitor_id,
            uuid.uuid4(),
            provider_id,
            kind,
            status,
            error,
            Jsonb(recipients) if recipients is not None else None,
            created_at,
            created_at,
            status,
            created_at,
        ),
    )[0][0]


# --- alert history --------------------------------------------------------------------------------------------


@pytest.fixture
def alert_history(clean, aio):
    """Project A: two monitors, a webhook provider, five deliveries an hour apart; project B: one of its own."""
    a = ApiClient(aio, make_project(aio, "A"))
    b = ApiClient(aio, make_project(aio, "B"))
    project_a, project_b = project_of(a), project_of(b)
    hook = add_provider(
        clean, {"url": f"https://hooks.example.net/x?token={WEBHOOK_TOKEN}"}, project=project_a
    )
    checkout = add_monitor(clean, project_a, "Checkout")
    search = add_monitor(clean, project_a, "Search")
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    ids = [
        add_delivery(clean, checkout, hook, start, "failure", "sent"),
        add_delivery(clean, checkout, hook, start + timedelta(hours=1), "failure", "failed", "HTTP 500"),
        add_delivery(clean, checkout, hook, start + timedelta(hours=2), "recovery", "sent"),
        add_delivery(clean, search, hook, start + timedelta(hours=3), "failure", "suppressed"),
        add_delivery(clean, search, hook, start + timedelta(hours=4), "ssl_expiring", "sent"),
    ]
    other_hook = add_provider(clean, {"url": "https://hooks.example.net/b"}, name="b-hook", project=project_b)
    other = add_monitor(clean, project_b, "B's")
    add_delivery(clean, other, other_hook, start + timedelta(hours=5), "failure", "sent")
    return a, b, {"checkout": checkout, "search": search, "hook": hook, "ids": ids, "start": start}


def ids_of(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [alert["id"] for alert in response.json()["data"]]


def test_alert_history_is_the_projects_newest_first_with_monitor_and_provider_named(alert_history):
    a, _, seeded = alert_history
    page = a.get("/alerts").json()
    assert [alert["id"] for alert in page["data"]] == seeded["ids"][::-1]
    assert page["pagination"] == {
        "page": 1,
        "limit": 10,
        "total": 5,
        "totalPages": 1,
        "hasNextPage": False,
        "hasPrevPage": False,
    }
    failed = next(alert for alert in page["data"] if alert["id"] == seeded["ids"][1])
    assert failed == {
        "id": seeded["ids"][1],
        "monitorId": str(seeded["checkout"]),
        "monitorName": "Checkout",
        "runId": failed["runId"],
        "providerId": str(seeded["hook"]),
        "providerName": "hook",
        "providerType": "webhook",
        "kind": "failure",
        "status": "failed",
        "attempts": 1,
        "title": "Monitor Down - Checkout",
        "reason": None,
        "alertReason": None,  # this seeded alert event carries none
        "error": "HTTP 500",
        "recipients": None,
        "createdAt": "2026-03-01T09:00:00Z",
        "claimedAt": "2026-03-01T09:00:00Z",
        "sentAt": None,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "sent"}, [4, 2, 0]),
        ({"status": "failed"}, [1]),
        ({"kind": "failure"}, [3, 1, 0]),
        ({"kind": "failure", "status": "suppressed"}, [3]),
        ({"from": "2026-03-01T09:00:00Z", "to": "2026-03-01T11:00:00Z"}, [3, 2, 1]),  # both inclusive
        ({"from": "2026-03-01T11:30:00"}, [4]),  # no offset: UTC
        ({"to": "2026-03-01T10:00:00+02:00"}, [0]),
        ({"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T10:00:00Z"}, [2]),
        ({"kind": "ssl_expired"}, []),
    ],
)
def test_alert_history_filters(alert_history, params, expected):
    a, _, seeded = alert_history
    assert ids_of(a.get("/alerts", params=params)) == [seeded["ids"][i] for i in expected]


def test_alert_history_filters_by_monitor_on_both_paths(alert_history):
    a, _, seeded = alert_history
    checkout, search, ids = seeded["checkout"], seeded["search"], seeded["ids"]
    assert ids_of(a.get("/alerts", params={"monitorId": str(search)})) == [ids[4], ids[3]]
    assert ids_of(a.get(f"/monitors/{checkout}/alerts")) == [ids[2], ids[1], ids[0]]
    assert ids_of(a.get(f"/monitors/{checkout}/alerts", params={"kind": "recovery"})) == [ids[2]]
    # the monitor's path takes no monitorId of its own
    refused = a.get(f"/monitors/{checkout}/alerts", params={"monitorId": str(search)})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "monitorId"


def test_alert_history_pages(alert_history):
    a, _, seeded = alert_history
    ids = seeded["ids"][::-1]
    first, second, third, beyond = (
        a.get("/alerts", params={"limit": 2, "page": n}).json() for n in (1, 2, 3, 4)
    )
    assert [x["id"] for x in first["data"] + second["data"] + third["data"]] == ids
    assert first["pagination"]["totalPages"] == 3 and first["pagination"]["hasNextPage"]
    assert third["pagination"] == {
        "page": 3,
        "limit": 2,
        "total": 5,
        "totalPages": 3,
        "hasNextPage": False,
        "hasPrevPage": True,
    }
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 5


def test_another_projects_alerts_never_appear(alert_history):
    a, b, seeded = alert_history
    own = b.get("/alerts").json()
    assert [alert["monitorName"] for alert in own["data"]] == ["B's"]
    assert ids_of(b.get("/alerts", params={"monitorId": str(seeded["checkout"])})) == []
    foreign = b.get(f"/monitors/{seeded['checkout']}/alerts")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "not_found"
    assert "B's" not in a.get("/alerts").text
    assert a.get(f"/monitors/{uuid.uuid4()}/alerts").status_code == 404
    assert a.get("/monitors/not-a-uuid/alerts").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30T00:00:00Z"}, "to"),
        ({"status": "delivered"}, "status"),
        ({"kind": "reminder"}, "kind"),
        ({"monitorId": "checkout"}, "monitorId"),
        ({"limit": 101}, "limit"),
        ({"page": 0}, "page"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_alert_query_is_400_naming_the_parameter(alert_history, params, field):
    a, _, seeded = alert_history
    for path in ("/alerts", f"/monitors/{seeded['checkout']}/alerts"):
        if field == "monitorId" and path != "/alerts":
            continue
        response = a.get(path, params=params)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field
    order = a.get("/alerts", params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"})
    assert order.json()["error"]["message"] == "from: must be at or before to"


def test_no_provider_secret_or_secret_in_an_error_text_reaches_an_alert_response(alert_history, clean):
    a, _, seeded = alert_history
    project_a = project_of(a)
    mail = add_provider(
        clean,
        {
            "smtpHost": "smtp.example.net",
            "username": "alerts",
            "password": SMTP_PASSWORD,
            "from": "alerts@example.net",
            "to": ["ops@example.net", "dev@example.net"],
        },
        provider_type="email",
        name="mail",
        project=project_a,
    )
    bot = add_provider(
        clean,
        {"botToken": BOT_TOKEN, "chatId": "-100123"},
        provider_type="telegram",
        name="bot",
        project=project_a,
    )
    at = seeded["start"] + timedelta(days=1)
    # errors as a receiver or an older writer might have left them, each carrying a secret
    add_delivery(
        clean,
        seeded["checkout"],
        seeded["hook"],
        at,
        status="failed",
        error=f"HTTP 403 from https://hooks.example.net/x?token={WEBHOOK_TOKEN}: forbidden",
    )
    add_delivery(
        clean,
        seeded["checkout"],
        mail,
        at + timedelta(minutes=1),
        status="partial",
        error=f"dev@example.net: SMTP 535 auth failed for alerts:{SMTP_PASSWORD}@smtp.example.net password={SMTP_PASSWORD}",
        recipients={"ops@example.net": "sent", "dev@example.net": f"failed: login password: {SMTP_PASSWORD}"},
    )
    add_delivery(
        clean,
        seeded["search"],
        bot,
        at + timedelta(minutes=2),
        status="failed",
        error=f"could not reach tgram://{BOT_TOKEN}/-100123 (bot {BOT_TOKEN} refused; Authorization: Bearer {BOT_TOKEN})",
    )
    everything = [
        a.get("/alerts", params={"limit": 100}).text,
        a.get(f"/monitors/{seeded['checkout']}/alerts", params={"limit": 100}).text,
        a.get(f"/monitors/{seeded['search']}/alerts", params={"limit": 100}).text,
    ]
    secret_parts = [WEBHOOK_TOKEN, SMTP_PASSWORD, BOT_TOKEN, BOT_TOKEN.split(":")[1]]
    for text in everything:
        for secret in secret_parts:
            assert secret not in text
    partial = next(x for x in a.get("/alerts").json()["data"] if x["status"] == "partial")
    assert partial["recipients"]["ops@example.net"] == "sent"  # addresses stay readable, as in the config
    assert partial["recipients"]["dev@example.net"].startswith("failed: login password: ")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (None, None),
        ("", ""),
        ("HTTP 500", "HTTP 500"),
        ("delivery failed", "delivery failed"),
        ("SMTP 550 mailbox unavailable", "SMTP 550 mailbox unavailable"),
        ("destination blocked: '10.0.0.5' is internal", "destination blocked: '10.0.0.5' is internal"),
        (
            "timed out posting to https://hooks.example.net/",
            "timed out posting to https://hooks.example.net/",
        ),
        (
            "HTTP 404 from https://hooks.example.net/T0/B1/secretpath",
            "HTTP 404 from https://hooks.example.net/T****th",
        ),
        (
            "at https://user:pw@hooks.example.net:8443/x?token=abc",
            "at https://hooks.example.net:8443/x****bc",
        ),
        ("tgram://123456:ABCDEF/chat failed", "tgram://12****at failed"),
        ("token=abc123 rejected", "token=**** rejected"),
        ("login alerts:pw-9z@smtp.example.net refused", "login alerts:****@smtp.example.net refused"),
        ("ops@example.net: SMTP 550", "ops@example.net: SMTP 550"),
        ("password: hunter2, retry", "password: ****, retry"),
        ("Authorization: Bearer abcdef123456", "Authorization: ****"),
        ("bearer abcdef123456 refused", "bearer **** refused"),
        ("key AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0 revoked", "key AA****T0 revoked"),
        (
            "run 6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f failed",
            "run 6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f failed",
        ),
    ],
)
def test_free_texts_are_shown_with_what_could_be_a_secret_masked(text, shown):
    assert masked_text(text) == shown


# --- incidents ------------------------------------------------------------------------------------------------

# Each change: (from, to, minutes before NOW). Each incident: (status, started, ended or None, duration seconds,
# index of the change that opened it), started and ended in minutes before NOW.
INCIDENT_CASES = {
    "no changes, no incidents": ([], [], 90),
    "a closed incident": (
        [("pending", "up", 100), ("up", "down", 50), ("down", "up", 20)],
        [("down", 50, 20, 1800, 1)],
        90,
    ),
    "an ongoing incident lasts until now": ([("pending", "down", 30)], [("down", 30, None, 1800, 0)], 90),
    "down and degraded are one incident, at its worst": (
        [("up", "degraded", 60), ("degraded", "down", 40), ("down", "degraded", 30), ("degraded", "up", 10)],
        [("down", 60, 10, 3000, 0)],
        90,
    ),
    "degraded alone is an incident": (
        [("up", "degraded", 60), ("degraded", "up", 50)],
        [("degraded", 60, 50, 600, 0)],
        90,
    ),
    "newest first": (
        [("up", "down", 100), ("down", "up", 90), ("up", "degraded", 10)],
        [("degraded", 10, None, 600, 2), ("down", 100, 90, 600, 0)],
        90,
    ),
    "pending and unknown are not incidents": (
        [("pending", "unknown", 60), ("unknown", "down", 30), ("down", "up", 20)],
        [("down", 30, 20, 600, 1)],
        90,
    ),
    "one batch's changes share a time and keep their order": (
        [("up", "down", 30), ("down", "up", 30)],
        [("down", 30, 30, 0, 0)],
        90,
    ),
    "one that started before the window is listed from its real start": (
        [("up", "down", 3 * 1440), ("down", "up", 1440 - 60), ("up", "down", 30)],
        [("down", 30, None, 1800, 2), ("down", 3 * 1440, 1440 - 60, (2 * 1440 + 60) * 60, 0)],
        1,
    ),
    "one that ended before the window is not": (
        [("up", "down", 3 * 1440), ("down", "up", 2 * 1440), ("up", "down", 30)],
        [("down", 30, None, 1800, 2)],
        1,
    ),
    "an ongoing one that started long before the window": (
        [("up", "down", 10 * 1440), ("down", "degraded", 5 * 1440)],
        [("down", 10 * 1440, None, 10 * 1440 * 60, 0)],
        1,
    ),
}


def record_changes(infra, monitor_id: uuid.UUID, changes: list[tuple[str, str, int]]) -> list[uuid.UUID]:
    run_ids = []
    for index, (before, after, minutes) in enumerate(changes):
        at = NOW - timedelta(minutes=minutes)
        run_id = add_run(infra, monitor_id, at + timedelta(microseconds=index))  # runs are unique per time
        infra.sql(
            """insert into status_changes (monitor_id, run_id, from_status, to_status, changed_at)
               values (%s, %s, %s, %s, %s)""",
            (monitor_id, run_id, before, after, at),
        )
        run_ids.append(run_id)
    return run_ids


@pytest.mark.parametrize(("changes", "expected", "days"), INCIDENT_CASES.values(), ids=INCIDENT_CASES.keys())
def test_incidents_from_status_changes(clean, aio, changes, expected, days):
    project = clean.sql("select id from projects where is_default")[0][0]
    monitor = add_monitor(clean, project, "Checkout")
    other = add_monitor(clean, project, "Other")
    record_changes(clean, other, [("up", "down", 45)])  # another monitor's changes never mix in
    run_ids = record_changes(clean, monitor, changes)
    page = aio.run(incident_page(project, monitor, IncidentsQuery(days=days, limit=100), now=NOW))
    got = [(i.status, i.started_at, i.ended_at, i.duration_seconds, i.run_id) for i in page.data]
    assert got == [
        (
            status,
            NOW - timedelta(minutes=started),
            NOW - timedelta(minutes=ended) if ended is not None else None,
            duration,
            run_ids[opener],
        )
        for status, started, ended, duration, opener in expected
    ]
    assert page.pagination.total == len(expected)
    assert page.since == NOW - timedelta(days=days)


def test_incidents_through_the_api_page_and_stay_in_their_project(clean, aio):
    a = ApiClient(aio, make_project(aio, "A"))
    b = ApiClient(aio, make_project(aio, "B"))
    monitor = add_monitor(clean, project_of(a), "Checkout")
    now = datetime.now(UTC)
    minutes = (now - NOW).total_seconds() / 60  # NOW is in the past; the API's window ends at the real now
    flaps = []
    for n in range(5):  # five closed incidents, 10 minutes each, an hour apart; then an ongoing one
        start = 60 * (6 - n)
        flaps += [("up", "down", start), ("down", "up", start - 10)]
    record_changes(clean, monitor, [(f, t, m - minutes) for f, t, m in [*flaps, ("up", "degraded", 5)]])
    first = a.get(f"/monitors/{monitor}/incidents", params={"limit": 4}).json()
    second = a.get(f"/monitors/{monitor}/incidents", params={"limit": 4, "page": 2}).json()
    assert first["pagination"]["total"] == 6 and first["pagination"]["totalPages"] == 2
    assert [i["status"] for i in first["data"]] == ["degraded", "down", "down", "down"]
    ongoing = first["data"][0]
    assert ongoing["endedAt"] is None and 5 * 60 - 5 <= ongoing["durationSeconds"] <= 5 * 60 + 120
    assert [i["durationSeconds"] for i in first["data"][1:] + second["data"]] == [600.0] * 5
    assert len(second["data"]) == 2
    beyond = a.get(f"/monitors/{monitor}/incidents", params={"page": 9}).json()
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 6
    assert b.get(f"/monitors/{monitor}/incidents").status_code == 404
    for params, field in (({"days": 0}, "days"), ({"days": 367}, "days"), ({"limit": 0}, "limit")):
        refused = a.get(f"/monitors/{monitor}/incidents", params=params)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == field


# --- regions --------------------------------------------------------------------------------------------------


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hours", "hourly_through", "daily_through", "expected"),
    [
        # nothing rolled up yet: from the whole hour `hours` back, every hour provisional
        (24, None, None, (at(12, 0) - timedelta(hours=24),) * 4),
        # inside the provisional hours: none final
        (1, at(11, 0), None, (at(11, 0),) * 4),
        # reaching into final hours: final before the mark, provisional from it
        (3, at(12, 0), None, (at(9, 0), at(12, 0), at(9, 0), at(9, 0))),
        # a daily tier: its whole days inside the final part
        (
            720,
            at(11, 0),
            datetime(2026, 3, 2, tzinfo=UTC),
            (
                datetime(2026, 1, 31, 12, tzinfo=UTC),
                at(11, 0),
                datetime(2026, 2, 1, tzinfo=UTC),
                datetime(2026, 3, 2, tzinfo=UTC),
            ),
        ),
        # a lagging hourly tier (its mark before the window): the whole window is provisional hours
        (1, at(9, 0), None, (at(11, 0),) * 4),
    ],
)
def test_the_regions_window_reads_final_hours_and_days_then_provisional_hours(
    hours, hourly_through, daily_through, expected
):
    assert regions_window(NOW, hours, hourly_through, daily_through) == expected


def roll_location_tier(aio, now: datetime = NOW) -> None:
    """What the rollup step writes from the per-monitor rows seeded: the location tier's final hours and days
    behind the marks, its provisional hours from raw results after the hourly mark; and each monitor's latest run
    as the one it applied, as aggregate leaves monitors.last_run_id."""

    async def write() -> None:
        async with db.transaction() as conn:
            marks = await rollups.read_marks(conn)
            origin = datetime(2000, 1, 1, tzinfo=UTC)
            if marks.get(HOURLY_MARK):
                await rollups.roll_location_hours(conn, origin, marks[HOURLY_MARK])
                await rollups.roll_provisional_hours(conn, marks[HOURLY_MARK], now)
            if marks.get(DAILY_MARK):
                await rollups.roll_location_days(conn, origin, marks[DAILY_MARK])
            await conn.execute(
                """update monitors m set last_run_id = (
                       select id from runs r where r.monitor_id = m.id order by scheduled_at desc limit 1)"""
            )

    aio.run(write())


def add_hour(
    infra,
    monitor_id,
    location,
    hour: int | datetime,
    checks: int,
    up: int,
    values: dict[int, int],
    table="rollup_hourly",
) -> None:
    """One rollup (hourly of 2026-03-02 `hour`:00, or of the bucket given), with its histogram; checks beyond
    sum(values) had no time."""
    infra.sql(
        f"""insert into {table} (monitor_id, location, bucket, checks, up_checks, response_count,
               response_sum_ms, min_response_ms, max_response_ms, p95_response_ms, response_values_ms,
               response_value_counts)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            monitor_id,
            location,
            hour if isinstance(hour, datetime) else datetime(2026, 3, 2, hour, tzinfo=UTC),
            checks,
            up,
            sum(values.values()),
            sum(v * c for v, c in values.items()),
            min(values, default=None),
            max(values, default=None),
            percentile_cont(values.items(), 0.95),  # regions' first guess at a floor reads it
            sorted(values),
            [values[v] for v in sorted(values)],
        ),
    )


def add_result(infra, monitor_id, location, at: datetime, status: str, response_ms: int | None) -> None:
    run_id = add_run(infra, monitor_id, at + timedelta(microseconds=uuid.uuid4().int % 999_983))
    infra.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
           values (%s, %s, %s, %s, %s, %s)""",
        (run_id, monitor_id, location, status, at, response_ms),
    )


def test_regions_combine_rolled_hours_and_the_raw_tail_as_a_hand_count_does(clean, aio):
    mine = clean.sql("insert into projects (name) values ('A') returning id")[0][0]
    theirs = clean.sql("insert into projects (name) values ('B') returning id")[0][0]
    checkout, search = add_monitor(clean, mine, "Checkout"), add_monitor(clean, mine, "Search")
    paused = add_monitor(clean, mine, "Paused", enabled=False)
    foreign = add_monitor(clean, theirs, "Foreign")
    clean.sql("insert into retention_marks (name, at) values (%s, %s)", (HOURLY_MARK, at(12, 0)))
    # hours 3 ago from 12:30 start at 09:00: rolled 09:00-12:00, raw from 12:00
    add_hour(clean, checkout, "us-east", 9, checks=4, up=3, values={10: 1, 20: 2, 30: 1})
    add_hour(clean, search, "us-east", 11, checks=2, up=2, values={50: 1})  # one check without a time
    add_hour(clean, checkout, "us-east", 8, checks=5, up=0, values={999: 5})  # before the window
    add_hour(clean, foreign, "us-east", 10, checks=10, up=0, values={1000: 10})  # another project's
    add_result(clean, checkout, "us-east", at(11, 30), "down", 777)  # rolled up already: not read again
    add_result(clean, checkout, "us-east", at(12, 10), "up", 40)
    add_result(clean, checkout, "us-east", at(12, 20), "down", 60)
    add_result(clean, search, "us-east", at(12, 15), "degraded", 100)  # counts as up, but is failing
    add_result(
        clean, paused, "us-east", at(12, 5), "down", 70
    )  # counted, but a paused monitor is not failing
    add_result(clean, foreign, "us-east", at(12, 10), "down", 5)
    add_result(clean, checkout, "eu-central", at(12, 10), "up", 15)
    add_result(clean, search, "eu-central", at(8, 0), "down", 500)  # its latest there, but before the window

    roll_location_tier(aio)
    report = aio.run(regions_report(mine, 3, now=NOW))
    assert (report.since, report.rolled_until, report.until) == (at(9, 0), at(12, 0), NOW)
    assert report.provisional_until == NOW
    by_location = {region.location: region for region in report.data}
    assert list(by_location) == ["us-east", "eu-central", "asia-pacific"]
    us = by_location["us-east"]
    # checks: 4 + 2 rolled, 4 raw; up: 3 + 2 rolled, up + degraded raw; times: 10 20 20 30 50 | 40 60 100 70
    assert (us.checks, us.up_checks, us.uptime_percentage) == (10, 7, 70.0)
    assert us.avg_response_ms == round(400 / 9, 2)
    # sorted 10 20 20 30 40 50 60 70 100: p95 at row 0.95 * 8 = 7.6, between 70 and 100
    assert us.p95_response_ms == 88.0
    assert us.failing_monitors == 2
    assert [(f.id, f.name, f.status) for f in us.failing] == [
        (checkout, "Checkout", "down"),
        (search, "Search", "degraded"),
    ]
    eu = by_location["eu-central"]
    assert (eu.checks, eu.up_checks, eu.uptime_percentage, eu.avg_response_ms, eu.p95_response_ms) == (
        1,
        1,
        100.0,
        15.0,
        15.0,
    )
    assert (eu.failing_monitors, eu.failing) == (0, [])
    asia = by_location["asia-pacific"]
    assert (asia.checks, asia.uptime_percentage, asia.avg_response_ms, asia.p95_response_ms) == (
        0,
        None,
        None,
        None,
    )
    assert (eu.name, eu.city) == ("EU Central", "Falkenstein")

    other = aio.run(regions_report(theirs, 3, now=NOW))
    assert {r.location: (r.checks, r.failing_monitors) for r in other.data}["us-east"] == (11, 1)


def test_regions_show_twenty_failing_monitors_and_count_them_all(clean, aio):
    mine = clean.sql("insert into projects (name) values ('A') returning id")[0][0]
    clean.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes)
           select %s, 'm' || lpad(g::text, 2, '0'), 'http_request', 'https://x.example.net/', 1
           from generate_series(1, 25) g""",
        (mine,),
    )
    monitors = clean.sql("select id, name from monitors where project_id = %s order by name", (mine,))
    for index, (monitor_id, _) in enumerate(monitors):
        add_result(clean, monitor_id, "asia-pacific", at(12, 1), "degraded" if index < 2 else "down", 30)
    roll_location_tier(aio)
    asia = {r.location: r for r in aio.run(regions_report(mine, 1, now=NOW)).data}["asia-pacific"]
    assert asia.failing_monitors == 25
    names = [f.name for f in asia.failing]
    assert names == [name for _, name in monitors[2:22]]  # down first, then by name


def test_regions_through_the_api(clean, aio):
    a = ApiClient(aio, make_project(aio, "A"))
    body = a.get("/regions").json()
    assert [r["location"] for r in body["data"]] == ["us-east", "eu-central", "asia-pacific"]
    assert set(body["data"][0]) == {
        "location",
        "name",
        "city",
        "checks",
        "upChecks",
        "uptimePercentage",
        "avgResponseMs",
        "p95ResponseMs",
        "failingMonitors",
        "failing",
    }
    for hours in (0, 721, "day"):
        refused = a.get("/regions", params={"hours": hours})
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "hours"
    assert ApiClient(aio, None).get("/regions").status_code == 401
    assert json.loads(a.get("/regions", params={"hours": 720}).text)["data"][0]["checks"] == 0


def spread_hours() -> list[tuple[int, int, dict[int, int]]]:
    """Three monitors' hours 9 to 11, each of 12 distinct times from 10 ms to about 1 s."""
    return [
        (n, hour, {10 + 37 * ((n * 7 + hour * 3 + k) % 23) + n * 100: 1 + (k % 3) for k in range(12)})
        for n in range(3)
        for hour in (9, 10, 11)
    ]


# (hours as (monitor, hour, {ms: count}), raw tail as (monitor, ms)); each answer is checked against Postgres
P95_CASES = {
    "fast-tail": (spread_hours(), [(0, 20), (1, 25), (2, 30), (0, 35)]),
    "slow-tail": (spread_hours(), [(0, 900), (1, 950), (2, 990), (0, 999)]),
    "no-tail": (spread_hours(), []),
    # one busy fast hour and one slow check, and a slow tail: the p95 is in the fast hour
    "p95-in-a-busy-fast-hour": (
        [(0, 11, {10: 100}), (1, 11, {1000: 1})],
        [(0, 600), (1, 700), (2, 800), (0, 900)],
    ),
}


@pytest.mark.parametrize(("hours", "tail"), P95_CASES.values(), ids=P95_CASES.keys())
def test_the_regions_p95_is_postgres_percentile_cont_over_every_value(clean, aio, hours, tail):
    mine = clean.sql("insert into projects (name) values ('A') returning id")[0][0]
    monitors = [add_monitor(clean, mine, f"m{n}") for n in range(3)]
    clean.sql("insert into retention_marks (name, at) values (%s, %s)", (HOURLY_MARK, at(12, 0)))
    every_value: list[int] = []
    for n, hour, values in hours:
        checks = sum(values.values())
        add_hour(clean, monitors[n], "us-east", hour, checks, checks, values)
        every_value += [v for v, c in values.items() for _ in range(c)]
    for minute, (n, ms) in enumerate(tail):
        add_result(clean, monitors[n], "us-east", at(12, minute + 1), "up", ms)
        every_value.append(ms)
    ((expected,),) = clean.sql(
        "select percentile_cont(0.95) within group (order by v) from unnest(%s::int[]) v", (every_value,)
    )
    roll_location_tier(aio)
    us = {r.location: r for r in aio.run(regions_report(mine, 3, now=NOW)).data}["us-east"]
    assert us.p95_response_ms == round(expected, 2)
    assert us.checks == len(every_value)


def test_hours_whose_histogram_contradicts_their_count_give_no_p95_and_end(clean, aio):
    mine = clean.sql("insert into projects (name) values ('A') returning id")[0][0]
    monitor = add_monitor(clean, mine, "hand-edited")
    clean.sql("insert into retention_marks (name, at) values (%s, %s)", (HOURLY_MARK, at(12, 0)))
    clean.sql(
        """insert into rollup_hourly (monitor_id, location, bucket, checks, up_checks, response_count,
               response_sum_ms, min_response_ms, max_response_ms)
           values (%s, 'us-east', %s, 3, 3, 3, 60, 10, 30)""",  # three times counted, none in the histogram
        (monitor, at(11, 0)),
    )
    roll_location_tier(aio)
    us = {r.location: r for r in aio.run(regions_report(mine, 3, now=NOW)).data}["us-east"]
    assert (us.checks, us.avg_response_ms, us.p95_response_ms) == (3, 20.0, None)


def day(month: int, day_of_month: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day_of_month, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "daily_through", "expected"),
    [
        (day(2, 27, 12), day(3, 2, 12), None, None),  # no daily tier yet
        (day(2, 27, 12), day(3, 2, 12), day(3, 2), (day(2, 28), day(3, 2))),
        (
            day(2, 27),
            day(3, 2, 12),
            day(3, 2),
            (day(2, 27), day(3, 2)),
        ),  # a window starting on a day takes it
        (day(2, 27, 12), day(3, 2, 12), day(3, 1), (day(2, 28), day(3, 1))),  # the daily tier lags
        (day(3, 1, 11), day(3, 2, 12), day(3, 2), None),  # 25 hours: no whole day inside
        (day(3, 1), day(3, 2), day(3, 2), (day(3, 1), day(3, 2))),
    ],
)
def test_long_windows_read_the_whole_days_the_daily_tier_holds(since, until, daily_through, expected):
    assert whole_days_within(since, until, daily_through) == expected


def test_a_long_window_reads_whole_days_from_the_daily_tier_and_its_ends_by_the_hour(clean, aio):
    mine = clean.sql("insert into projects (name) values ('A') returning id")[0][0]
    monitor = add_monitor(clean, mine, "Checkout")
    clean.sql(
        "insert into retention_marks (name, at) values (%s, %s), (%s, %s)",
        (HOURLY_MARK, at(12, 0), DAILY_MARK, day(3, 2)),
    )
    # 72 hours from 12:30 start at 02-27 12:00: by the hour to 02-28, days 02-28 and 03-01, by the hour to 12:00
    add_hour(clean, monitor, "us-east", day(2, 27, 11), 9, 0, {900: 9})  # before the window
    add_hour(clean, monitor, "us-east", day(2, 27, 13), 2, 2, {10: 2})
    add_hour(clean, monitor, "us-east", day(2, 28, 5), 9, 0, {800: 9})  # inside a day the daily tier holds
    add_hour(clean, monitor, "us-east", day(3, 2, 3), 2, 1, {30: 1, 40: 1})
    add_hour(clean, monitor, "us-east", day(2, 28), 3, 3, {20: 3}, table="rollup_daily")
    add_hour(clean, monitor, "us-east", day(3, 1), 2, 1, {50: 1, 60: 1}, table="rollup_daily")
    add_result(clean, monitor, "us-east", at(12, 10), "up", 70)
    roll_location_tier(aio)
    us = {r.location: r for r in aio.run(regions_report(mine, 72, now=NOW)).data}["us-east"]
    # checks 2 + 2 + 3 + 2 + 1; up 2 + 1 + 3 + 1 + 1; times 10 10 20 20 20 30 40 50 60 70
    assert (us.checks, us.up_checks, us.uptime_percentage) == (10, 8, 80.0)
    assert us.avg_response_ms == 33.0
    assert us.p95_response_ms == 65.5  # row 0.95 * 9 = 8.55: 60 + 0.55 * (70 - 60)
