"""Issue 16, fault 5: one monitor must not exhaust a check-http replica's memory. A body no assertion reads is
streamed and counted, not kept; a body an assertion reads is buffered within the process's budget, waiting for
room or failing clearly. Against a real loopback HTTP server."""

from __future__ import annotations

import asyncio

import pytest

from shared.checks import body_budget, run_check
from shared.checks.body_budget import BodyBudget, BodyOverBudget
from shared.checks.fetch import EXCERPT_BYTES, Exchange, PhaseTimer, fetch
from shared.ssrf import check_url_target
from tests.check_servers import RouteServer
from tests.factories import trial_job

pytestmark = pytest.mark.usefixtures("internal_targets")

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server():
    running = RouteServer().start()
    yield running
    running.stop()


@pytest.fixture
def small_budget(monkeypatch):
    """A 1 MB buffer for the process, so a test can fill it."""
    budget = BodyBudget(1 * MB)
    monkeypatch.setattr(body_budget, "process_budget", lambda: budget)
    return budget


def check(target: str, **config):
    return asyncio.run(run_check(trial_job({"type": "http_request", "target": target, "config": config})))


def exchange(url: str, keeps_body: bool, cap: int = 100 * MB) -> Exchange:
    return Exchange("GET", check_url_target(url), {}, None, 30, 0, cap, keeps_body=keeps_body)


@pytest.mark.parametrize("route", ["big", "chunked"])
def test_a_body_no_assertion_reads_is_counted_and_not_kept(server, route):
    facts = asyncio.run(
        fetch(exchange(server.url(f"/{route}?bytes={20 * MB}"), keeps_body=False), PhaseTimer())
    )
    assert len(facts.body) <= EXCERPT_BYTES, "only the excerpt's bytes stay in memory"
    assert facts.body_bytes >= 20 * MB and not facts.body_truncated


def test_a_check_without_assertions_reports_the_size_it_streamed(server, small_budget):
    outcome = check(server.url(f"/big?bytes={5 * MB}"), maxResponseSizeMb=20)
    assert outcome.status == "up", outcome.message
    assert outcome.details["bodyBytes"] == 5 * MB + len("THE-END")
    assert small_budget.free_bytes == small_budget.total_bytes, "it never took from the buffer"


def test_a_failing_check_shows_an_excerpt_without_decoding_the_whole_body(server):
    outcome = check(server.url(f"/big?bytes={2 * MB}"), expectedStatusCodes="404")
    assert outcome.status == "down"
    assert outcome.details["bodyExcerpt"] == "x" * 300


def test_a_keyword_check_buffers_within_the_budget_and_gives_it_back(server, small_budget):
    outcome = check(server.url("/big?bytes=300000"), keywordInBody="THE-END")
    assert outcome.status == "up", outcome.message
    assert small_budget.free_bytes == small_budget.total_bytes


@pytest.mark.parametrize("path", ["/chunked?bytes=1000", "/gzip?body=yes"])
def test_a_body_that_could_never_fit_fails_clearly(server, small_budget, path):
    """Without the body's length on the wire (chunked, or encoded) the check reserves its whole cap: 10 MB here."""
    outcome = check(server.url(path), keywordInBody="y")
    assert outcome.status == "error"
    assert "CHECK_BODY_BUFFER_MB" in outcome.message and "maxResponseSizeMb" in outcome.message
    assert small_budget.free_bytes == small_budget.total_bytes


def test_the_same_check_fits_once_its_cap_does(server, small_budget):
    outcome = check(server.url("/chunked?bytes=100000"), keywordInBody="y", maxResponseSizeMb=1)
    assert outcome.status == "error", "a 1 MB cap, counted twice for the decoded text, is still over 1 MB"
    small_budget.total_bytes = small_budget.free_bytes = 3 * MB
    outcome = check(server.url("/chunked?bytes=100000"), keywordInBody="y", maxResponseSizeMb=1)
    assert outcome.status == "up", outcome.message


def test_a_lease_waits_for_room_and_a_cancelled_wait_takes_nothing():
    async def scenario():
        budget = BodyBudget(1000)
        async with budget.lease() as first:
            await first.hold(600)
            second_lease = budget.lease()
            second = await second_lease.__aenter__()
            waiting = asyncio.create_task(second.hold(600))
            for _ in range(20):
                await asyncio.sleep(0)
            assert not waiting.done(), "600 + 600 > 1000: the second waits"
            cancelled = asyncio.create_task(BodyBudget.lease(budget).__aenter__())
            lease = await cancelled
            timed_out = asyncio.create_task(lease.hold(900))
            await asyncio.sleep(0)
            timed_out.cancel()
            with pytest.raises(asyncio.CancelledError):
                await timed_out
            assert lease.held_bytes == 0 and budget.free_bytes == 400
        await asyncio.wait_for(waiting, 5)  # the first lease ended: room for the second
        assert budget.free_bytes == 400
        await second_lease.__aexit__(None, None, None)
        assert budget.free_bytes == 1000

    asyncio.run(scenario())


def test_a_lease_larger_than_the_budget_is_refused_at_once():
    async def scenario():
        async with BodyBudget(1000).lease() as lease:
            with pytest.raises(BodyOverBudget, match="more than"):
                await lease.hold(1001)

    asyncio.run(scenario())
