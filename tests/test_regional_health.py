"""Regional pipeline health: the pure verdict (tables), the connector's heartbeat read back whatever is under its
key, and GET /regions/health against the real stack: every region ok with a fresh heartbeat, a stopped
connector's heartbeat going stale, check functions that do not answer, and a Redis that refuses or hangs
reported down within the probe's short timeout."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from openfaas.connector.connector import Connector, ConnectorConfig
from openfaas.local.services import free_port
from shared import streams
from shared.api.services.regional_health import regions_health
from shared.checks import CHECK_TYPES
from shared.pipeline.heartbeats import (
    ConnectorHeartbeat,
    HeartbeatUnreadable,
    parse_heartbeat,
    read_heartbeats,
)
from shared.rules.regional_health import (
    Backlog,
    HeartbeatFacts,
    RegionFacts,
    is_stale,
    judge_region,
    stream_lag,
)
from shared.settings import reset_settings_cache
from tests.api_client import ApiClient
from tests.dashboard_browser import DESKTOP, PHONE, chromium, screenshot, sign_in, watched_page
from tests.factories import make_project
from tests.redis_proxy import RedisProxy
from tests.servers import wait_until

pytestmark = pytest.mark.timeout(300)

RUNNING = {"read check-http": "running", "reclaim": "running", "heartbeat": "running"}
ANSWERING = {"check-http": True, "check-ping": True}


def beat(age=1.0, interval=7.0, status="ok", loops=None, functions=None) -> HeartbeatFacts:
    return HeartbeatFacts(
        age, interval, status, loops or RUNNING, ANSWERING if functions is None else functions
    )


@pytest.mark.parametrize(
    ("facts", "status", "codes"),
    [
        (RegionFacts(True, beat(), backlog=Backlog(10, 2, 0)), "ok", []),
        (RegionFacts(False), "down", ["redis_unreachable"]),
        # Redis down says it all: nothing else could be read
        (RegionFacts(False, beat(age=999)), "down", ["redis_unreachable"]),
        (RegionFacts(True, None, backlog=Backlog()), "down", ["heartbeat_missing"]),
        (RegionFacts(True, None, heartbeat_unreadable=True), "degraded", ["heartbeat_unreadable"]),
        (RegionFacts(True, beat(age=21.0, interval=7.0)), "ok", []),  # 3 intervals: still fresh
        (RegionFacts(True, beat(age=21.5, interval=7.0)), "down", ["heartbeat_stale"]),
        (
            RegionFacts(True, beat(status="degraded", loops={**RUNNING, "reclaim": "redis-unavailable"})),
            "degraded",
            ["connector_degraded"],
        ),
        (
            RegionFacts(True, beat(functions={"check-http": True, "check-ping": False})),
            "degraded",
            ["check_functions_unreachable"],
        ),
        (
            RegionFacts(True, beat(functions={"check-http": False, "check-ping": False})),
            "down",  # nothing is checked there
            ["check_functions_unreachable"],
        ),
        (RegionFacts(True, beat(), backlog=Backlog(5000, 400, 600)), "ok", []),  # 1000 waiting: the limit
        (RegionFacts(True, beat(), backlog=Backlog(5000, 400, 601)), "degraded", ["backlog"]),
        (RegionFacts(True, beat(), backlog=Backlog(5000, 1001, None)), "degraded", ["backlog"]),
        (
            RegionFacts(
                True, beat(status="failing", functions={"check-http": False}), backlog=Backlog(0, 2000, 0)
            ),
            "down",
            ["connector_degraded", "check_functions_unreachable", "backlog"],
        ),
    ],
)
def test_a_regions_verdict_follows_its_worst_reason(facts, status, codes):
    verdict = judge_region(facts)
    assert (verdict.status, [reason.code for reason in verdict.reasons]) == (status, codes)
    assert verdict.ok is (status == "ok")


def test_reasons_name_what_a_person_needs_and_no_more():
    verdict = judge_region(
        RegionFacts(
            True,
            beat(status="degraded", loops={**RUNNING, "reclaim": "crashed"}, functions={"check-ping": False}),
            backlog=Backlog(0, 1500, 0),
        )
    )
    assert [reason.message for reason in verdict.reasons] == [
        "connector degraded: reclaim",
        "check functions unreachable: check-ping",
        "backlog 1500",
    ]
    assert judge_region(RegionFacts(True, beat(age=40.4))).reasons[0].message == "heartbeat stale, 40 s ago"


@pytest.mark.parametrize(
    ("group_lag", "last_generated", "last_delivered", "expected"),
    [
        (7, "5-0", "1-0", 7),  # Redis 7 says so
        (None, "5-0", "5-0", 0),  # before 7: the newest entry was delivered
        (None, "5-0", "4-0", None),  # before 7: some arrived since; how many it cannot say cheaply
        (None, None, "0-0", 0),  # an empty stream
    ],
)
def test_lag_is_redis_own_or_known_zero_or_unknown(group_lag, last_generated, last_delivered, expected):
    assert stream_lag(group_lag, last_generated, last_delivered) == expected


@pytest.mark.parametrize(
    ("age", "interval", "stale"), [(0.0, 1.0, False), (3.0, 1.0, False), (3.01, 1.0, True)]
)
def test_a_heartbeat_is_stale_after_three_of_its_intervals(age, interval, stale):
    assert is_stale(age, interval) is stale


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", "heartbeat"),
        (json.dumps({"v": 2, "location": "x"}), "v"),
        (json.dumps({"v": 1, "location": "x"}), "workerLocation"),
    ],
)
def test_a_malformed_heartbeat_is_refused_naming_its_field(raw, field):
    with pytest.raises(HeartbeatUnreadable, match=f"^{field}"):
        parse_heartbeat(raw)


def test_a_malformed_heartbeat_is_reported_and_crashes_no_reader(clean, aio):
    location = f"garbled-{uuid.uuid4().hex[:8]}"
    clean.redis().set(streams.connector_heartbeat_key(location), '{"v": 1, "location": 3}')
    assert aio.run(read_heartbeats([location])) == {location: None}
    (region,) = aio.run(regions_health([location])).data
    assert region.reasons[0].code == "heartbeat_unreadable" and region.heartbeat_age_seconds is None


# --- a connector of the test's own ------------------------------------------------------------------------------


class OwnConnector:
    """A connector serving one location of its own, beating every 0.2 s (probes given 0.5 s)."""

    def __init__(self, aio, redis_url: str, gateway_url: str) -> None:
        self.aio = aio
        self.location = f"hb-{uuid.uuid4().hex[:8]}"
        self.connector = Connector(
            ConnectorConfig(
                redis_url=redis_url,
                gateway_url=gateway_url,
                streams=[streams.job_stream("http_request", self.location)],
                heartbeat_seconds=0.2,
                probe_timeout_seconds=0.5,
                worker_location=self.location,
            )
        )

        async def start():
            return asyncio.create_task(self.connector.run_forever(reclaim_every_seconds=0.5))

        self.task = aio.run(start())

    def health(self):
        (region,) = self.aio.run(regions_health([self.location])).data
        return region

    def stop(self) -> None:
        async def stop():
            if not self.task.done():
                self.task.cancel()
                await asyncio.gather(self.task, return_exceptions=True)
                await self.connector.close()

        self.aio.run(stop())


@pytest.fixture
def own_connector(stack, aio, infra) -> Iterator[OwnConnector]:
    running = OwnConnector(aio, infra.redis_url, stack.gateway_url)
    yield running
    running.stop()


def test_a_stopped_connectors_heartbeat_goes_stale_and_its_region_down(own_connector):
    region = wait_until(lambda: (r := own_connector.health()).ok and r, message="a fresh heartbeat")
    assert region.check_functions == {"check-http": True}, "the real check function answered the probe"
    assert region.connector_status == "ok" and region.serves_all_locations is False
    assert region.heartbeat_stale_after_seconds == pytest.approx(3 * 0.7)

    own_connector.stop()
    stale = wait_until(
        lambda: (r := own_connector.health()).status == "down" and r, message="the heartbeat gone stale"
    )
    assert [reason.code for reason in stale.reasons] == ["heartbeat_stale"]
    assert stale.heartbeat_age_seconds > stale.heartbeat_stale_after_seconds
    # and once its TTL (10 intervals) is over, there is none at all
    gone = wait_until(
        lambda: (r := own_connector.health()).heartbeat_age_seconds is None and r, message="the key expired"
    )
    assert [reason.code for reason in gone.reasons] == ["heartbeat_missing"]


def test_check_functions_that_do_not_answer_put_the_region_down(aio, infra):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: no gateway, so no check function
    running = OwnConnector(aio, infra.redis_url, closed)
    try:
        region = wait_until(
            lambda: (r := running.health()).heartbeat_age_seconds is not None and r, message="a heartbeat"
        )
    finally:
        running.stop()
    assert region.status == "down" and region.check_functions == {"check-http": False}
    assert [reason.message for reason in region.reasons] == ["check functions unreachable: check-http"]


# --- through the API --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key(stack, aio) -> str:
    return make_project(aio, "regional health")


def test_every_configured_region_is_ok_with_a_fresh_heartbeat_from_the_stacks_connector(stack, key):
    def report():
        response = httpx.get(
            f"{stack.gateway_url}/function/api/regions/health",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    body = wait_until(lambda: (b := report())["ok"] and b, message="every region ok")
    assert [region["location"] for region in body["data"]] == ["us-east", "eu-central", "asia-pacific"]
    for region in body["data"]:
        assert region["status"] == "ok" and region["reasons"] == [] and region["redisReachable"]
        assert 0 <= region["heartbeatAgeSeconds"] <= region["heartbeatStaleAfterSeconds"]
        assert region["servesAllLocations"] is True, "the local connector reads every location"
        assert region["checkFunctions"] == {type_.function: True for type_ in CHECK_TYPES.values()}
        assert set(region["backlog"]) == {"length", "pending", "lag"}
    assert "redis://" not in json.dumps(body) and "127.0.0.1" not in json.dumps(body)


def test_a_check_function_answers_a_get_without_a_key_and_a_health_read_needs_one(stack, aio):
    probe = httpx.get(f"{stack.gateway_url}/function/check-http", timeout=30)
    assert (probe.status_code, probe.json()) == (200, {"ok": True})
    # in process: the stack lets anonymous local calls in (SC_ALLOW_ANONYMOUS_LOCAL), as `make run` does
    assert ApiClient(aio, None).get("/regions/health").status_code == 401


@pytest.fixture
def stalled_redis(infra) -> Iterator[RedisProxy]:
    proxy = RedisProxy(infra.redis_url)
    proxy.set_mode("stall")  # accepts, then answers nothing
    yield proxy
    proxy.stop()


def test_a_region_whose_redis_refuses_or_hangs_is_reported_down_within_the_short_timeout(
    aio, infra, monkeypatch, stalled_redis
):
    key = make_project(aio, "unreachable region")
    closed_port = free_port()  # nothing listens there: connections are refused
    monkeypatch.setenv(
        "SC_REGION_REDIS_URLS",
        json.dumps({"eu-central": f"redis://127.0.0.1:{closed_port}/0", "asia-pacific": stalled_redis.url}),
    )
    reset_settings_cache()
    started = time.monotonic()
    response = ApiClient(aio, key).get("/regions/health")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    regions = {region["location"]: region for region in body["data"]}
    assert body["ok"] is False
    for location in ("eu-central", "asia-pacific"):
        assert regions[location]["status"] == "down" and regions[location]["redisReachable"] is False
        assert [r["code"] for r in regions[location]["reasons"]] == ["redis_unreachable"]
        assert regions[location]["backlog"] is None and regions[location]["heartbeatAgeSeconds"] is None
    assert regions["us-east"]["redisReachable"] is True, "the other regions are still read"
    # a bound, not a measurement: a hung Redis waited on without the probe's 2 s timeout never answers at all
    assert elapsed < 10, elapsed
    assert str(closed_port) not in response.text and "127.0.0.1" not in response.text


# --- the dashboard's regions page -------------------------------------------------------------------------------


@pytest.fixture
def paused_stack_connector(stack) -> Iterator[None]:
    """The stack's connector stopped (SIGSTOP) so that heartbeats a test writes stay as written."""
    stack.kill("connector", signal.SIGSTOP)
    yield
    stack.kill("connector", signal.SIGCONT)


def hand_written_heartbeat(location: str, age_seconds: float, functions: dict[str, bool]) -> str:
    return ConnectorHeartbeat(
        location=location,
        worker_location=None,
        serves=["us-east", "eu-central", "asia-pacific"],
        consumer="test",
        written_at=datetime.now(UTC) - timedelta(seconds=age_seconds),
        interval_seconds=7.0,
        connector_status="ok",
        loops={"heartbeat": "running"},
        check_functions=functions,
    ).model_dump_json(by_alias=True)


def test_the_regions_page_shows_each_regions_health_and_why(stack, key, infra, paused_stack_connector):
    redis = infra.redis()
    ages = {"us-east": 1, "eu-central": 2, "asia-pacific": 95}
    functions = {
        "us-east": {"check-http": True, "check-ping": True},
        "eu-central": {"check-http": True, "check-ping": False},
        "asia-pacific": {"check-http": True},
    }

    def write_heartbeats() -> None:  # before each page: the fresh ones must stay fresh
        for location, age in ages.items():
            raw = hand_written_heartbeat(location, age, functions[location])
            redis.set(streams.connector_heartbeat_key(location), raw, ex=300)

    with chromium() as browser:
        for viewport, dark in ((DESKTOP, False), (PHONE, False), (DESKTOP, True), (PHONE, True)):
            with watched_page(browser, viewport=viewport, dark=dark) as watched:
                page = watched.page
                write_heartbeats()
                sign_in(page, stack.gateway_url, key, next_path="/regions")
                page.get_by_role("heading", name="Regions", exact=True).wait_for()
                health = {
                    location: page.locator(f"[data-location={location}] [data-health]").get_attribute(
                        "data-health"
                    )
                    for location in ages
                }
                assert health == {"us-east": "ok", "eu-central": "degraded", "asia-pacific": "down"}
                reasons = page.get_by_role("list", name="Why eu-central is degraded")
                assert reasons.inner_text() == "check functions unreachable: check-ping"
                stale = page.get_by_role("list", name="Why asia-pacific is down").inner_text()
                assert re.fullmatch(r"heartbeat stale, 9\d s ago", stale), stale
                assert (
                    "trouble in 2 of 3 regions: eu-central, asia-pacific"
                    in page.locator("[data-pipeline]").inner_text()
                )
                size = "desktop" if viewport is DESKTOP else "phone"
                screenshot(page, f"regions-health-{size}-{'dark' if dark else 'light'}")
                page.keyboard.press("Tab")  # the skip link first, then on through the page
                assert page.evaluate("document.activeElement.textContent") == "Skip to content"
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                watched.assert_no_console_errors()


def test_the_backlog_counts_pending_and_undelivered_entries_of_the_regions_job_streams(clean, aio):
    location = f"backlog-{uuid.uuid4().hex[:8]}"
    redis = clean.redis()
    read = streams.job_stream("http_request", location)
    redis.xgroup_create(read, streams.CONSUMER_GROUP, id="0", mkstream=True)
    for _ in range(3):
        redis.xadd(read, {"data": "{}"})
    ((_, delivered),) = redis.xreadgroup(streams.CONSUMER_GROUP, "c", {read: ">"}, count=10)
    redis.xack(read, streams.CONSUMER_GROUP, delivered[0][0])  # 3 kept, 2 pending, none undelivered
    unread = streams.job_stream("port_check", location)  # no connector has read it: both entries wait
    redis.xadd(unread, {"data": "{}"})
    redis.xadd(unread, {"data": "{}"})
    (region,) = aio.run(regions_health([location])).data
    assert region.backlog.model_dump() == {"length": 5, "pending": 2, "lag": 2}
