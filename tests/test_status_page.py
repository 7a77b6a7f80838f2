"""The public status function through the real local stack: a page lists exactly its monitors with 90 daily bars
each (in Chromium, at 1280 and 390 px, light and dark), a monitor going down turns the banner into an outage
within the cache period, incidents show their Markdown rendered safely, conditional GETs answer 304, badges
are valid SVG (read with an XML parser) or N/A for a monitor on no published page, feeds parse, a custom domain
reaches its page by Host, and an unknown slug answers a plain 404 page."""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import httpx
import pytest

from shared.status.cache import FRESH_SECONDS, MIN_RENDER_INTERVAL_SECONDS
from tests.dashboard_browser import DESKTOP, PHONE, chromium, screenshot, watched_page
from tests.factories import (
    add_incident,
    add_result,
    add_status_page,
    insert_monitor,
    make_project,
    record_run,
)
from tests.servers import LoopbackHttpServer

pytestmark = pytest.mark.timeout(600)
SVG = "{http://www.w3.org/2000/svg}"
BASE = "/function/status"


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def key(stack, aio) -> str:
    return make_project(aio, "status pages")


def get(stack, path: str, **kwargs) -> httpx.Response:
    return httpx.get(f"{stack.gateway_url}{BASE}{path}", timeout=60, **kwargs)


def unique(prefix: str) -> str:
    """The status function's cache outlives a test: each test reads pages and badges of its own."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def seeded_page(infra, slug: str, **options):
    """Two groups of monitors with a few days of results, and one monitor that is on no page."""
    api = insert_monitor(infra, "Public API", next_run_at=datetime.now(UTC) + timedelta(days=1))
    web = insert_monitor(infra, "Website", next_run_at=datetime.now(UTC) + timedelta(days=1))
    db = insert_monitor(infra, "Database", next_run_at=datetime.now(UTC) + timedelta(days=1))
    hidden = insert_monitor(infra, "Secret admin panel", next_run_at=datetime.now(UTC) + timedelta(days=1))
    now = datetime.now(UTC)
    for monitor in (api, web, db, hidden):
        for hours_ago in (1, 30, 80):
            add_result(infra, monitor, "us-east", now - timedelta(hours=hours_ago), 120)
    infra.sql(
        "update monitors set status = 'up', last_check_at = now() where id = any(%s)",
        ([api, web, db, hidden],),
    )
    # the website's last run: up overall (its strategy tolerated it), failing in one region
    last_run = record_run(infra, web, now - timedelta(minutes=2), {"us-east": "up", "eu-central": "down"})
    infra.sql("update monitors set last_run_id = %s where id = %s", (last_run, web))
    page_id = add_status_page(infra, slug, {"Core": [api, web], "Data": [db]}, **options)
    return page_id, {"api": api, "web": web, "db": db, "hidden": hidden}


def test_the_page_lists_exactly_its_monitors_with_90_daily_bars_each(stack, infra, browser):
    slug = unique("acme")
    _, monitors = seeded_page(infra, slug, show_response_times=True)
    today = datetime.now(UTC).date()
    for viewport, dark, name in (
        (DESKTOP, False, "status-page-1280-light"),
        (DESKTOP, True, "status-page-1280-dark"),
        (PHONE, False, "status-page-390-light"),
        (PHONE, True, "status-page-390-dark"),
    ):
        with watched_page(browser, viewport=viewport, dark=dark) as watched:
            page = watched.page
            reply = page.goto(f"{stack.gateway_url}{BASE}/{slug}")
            assert reply.status == 200
            rows = page.locator("[data-monitor-id]")
            shown = set(rows.evaluate_all("rows => rows.map(row => row.dataset.monitorId)"))
            assert shown == {str(monitors[name]) for name in ("api", "web", "db")}
            assert "Secret admin panel" not in page.content()
            assert page.get_by_role("heading", name="Core", exact=True).is_visible()
            assert page.get_by_role("heading", name="Data", exact=True).is_visible()
            for monitor_id in shown:
                days = page.locator(f'[data-monitor-id="{monitor_id}"] .daily-bars [data-day]')
                assert days.count() == 90
                assert days.first.get_attribute("data-day") == (today - timedelta(days=89)).isoformat()
                assert days.last.get_attribute("data-day") == today.isoformat()
            # today's bar has data (a result an hour ago), a month ago has none and is grey
            api_days = page.locator(f'[data-monitor-id="{monitors["api"]}"] .daily-bars [data-day]')
            assert "ok" in api_days.last.get_attribute("class").split()
            assert "none" in api_days.nth(50).get_attribute("class").split()
            assert page.locator(f'[data-monitor-id="{monitors["web"]}"] .state').inner_text() == (
                "Degraded in eu-central"
            )
            assert page.locator("[data-banner]").get_attribute("data-banner") == "partial"
            assert page.locator(".daily-bars").first.bounding_box()["width"] <= viewport["width"]
            api_days.last.hover()
            assert api_days.last.locator(".tip").is_visible()
            # a perfect day is no tab stop on a public page (charts.daily_bars focus="notable")
            assert api_days.last.get_attribute("tabindex") is None
            screenshot(page, name)
            watched.assert_no_console_errors()


def test_without_charts_a_page_of_50_monitors_weighs_under_100_kb_and_asks_no_other_host(
    stack, infra, browser
):
    slug = unique("heavy")
    ids = [
        insert_monitor(infra, f"Service {n}", next_run_at=datetime.now(UTC) + timedelta(days=1))
        for n in range(50)
    ]
    infra.sql("update monitors set status = 'up' where id = any(%s)", (ids,))
    add_status_page(infra, slug, {f"Group {n // 10}": ids[n : n + 10] for n in range(0, 50, 10)})
    reply = get(stack, f"/{slug}")
    html = reply.text
    assert html.count('class="daily-bars"') == 50
    # the charts are the daily bars (one element per day, each with its tooltip) and any SVG
    without_charts = re.sub(r'<div class="daily-bars".*?</div>', "", html, flags=re.S)
    without_charts = re.sub(r"<svg.*?</svg>", "", without_charts, flags=re.S)
    assert len(without_charts.encode()) < 100_000, len(without_charts.encode())
    zipped = httpx.get(f"{stack.gateway_url}{BASE}/{slug}", headers={"Accept-Encoding": "gzip"}, timeout=60)
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.num_bytes_downloaded < 100_000  # on the wire, charts included
    with watched_page(browser) as watched:
        requested: list[str] = []
        watched.page.on("request", lambda request: requested.append(request.url))
        watched.page.goto(f"{stack.gateway_url}{BASE}/{slug}")
        assert requested and all(url.startswith(stack.gateway_url) for url in requested)
        watched.assert_no_console_errors()


def test_a_monitor_going_down_turns_the_banner_into_an_outage_within_the_cache_period(stack, infra, key):
    target = LoopbackHttpServer().start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        body = {
            "name": "Checkout",
            "type": "http_request",
            "target": target.url,
            "frequencyMinutes": 60,
            "locationConfig": {"enabled": True, "locations": ["us-east", "eu-central"], "strategy": "all"},
        }
        api = f"{stack.gateway_url}/function/api"
        monitor = httpx.post(f"{api}/monitors", json=body, headers=headers, timeout=60).json()
        wait_for_status(infra, monitor["id"], "up")
        project = infra.sql("select project_id from monitors where id = %s", (monitor["id"],))[0][0]
        slug = unique("shop")
        add_status_page(infra, slug, {"Shop": [monitor["id"]]}, project=project)
        assert banner_of(get(stack, f"/{slug}")) == "operational"
        assert banner_of(get(stack, f"/{slug}")) == "operational"  # now served from the cache

        target.status = 500
        assert (
            httpx.post(f"{api}/monitors/{monitor['id']}/run", headers=headers, timeout=60).status_code == 202
        )
        went_down = wait_for_status(infra, monitor["id"], "down")
        # Pushed from aggregate's status change; a reader may be handed the copy in hand once while the next
        # is made, so the page turns within the minimum render interval, far inside the cache period.
        deadline = went_down + FRESH_SECONDS
        while time.monotonic() < deadline and banner_of(get(stack, f"/{slug}")) != "major":
            time.sleep(0.2)
        reply = get(stack, f"/{slug}")
        assert banner_of(reply) == "major", f"still {banner_of(reply)} {FRESH_SECONDS} s after the change"
        assert "Major outage" in reply.text and "Down in eu-central, us-east" in reply.text
        assert MIN_RENDER_INTERVAL_SECONDS < FRESH_SECONDS
    finally:
        target.stop()


def wait_for_status(infra, monitor_id, status: str, timeout: float = 90) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if infra.sql("select status from monitors where id = %s", (monitor_id,))[0][0] == status:
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"monitor {monitor_id} never became {status}")


def banner_of(reply: httpx.Response) -> str | None:
    marker = 'data-banner="'
    text = reply.text
    return text[text.index(marker) + len(marker) :].split('"', 1)[0] if marker in text else None


def test_a_published_incident_appears_with_its_markdown_rendered_and_a_draft_does_not(stack, infra, browser):
    slug = unique("incidents")
    page_id, monitors = seeded_page(infra, slug)
    add_incident(
        infra,
        page_id,
        "Checkout errors",
        [
            "**Payments** fail for some cards. <script>alert('x')</script> [Card network status](https://example.com/)"
        ],
        status="identified",
        impact="major",
        monitor_ids=[monitors["api"], monitors["hidden"]],
    )
    add_incident(infra, page_id, "Draft nobody published", ["not yet"], is_draft=True)
    with watched_page(browser) as watched:
        page = watched.page
        page.goto(f"{stack.gateway_url}{BASE}/{slug}")
        incident = page.get_by_role("article", name="Checkout errors")
        assert incident.locator("strong", has_text="Payments").count() == 1
        link = incident.get_by_role("link", name="Card network status")
        assert link.get_attribute("href") == "https://example.com/"
        assert "<script>alert('x')</script>" in incident.inner_text()  # shown as text, never run
        assert page.locator("script").count() == 0
        assert "Affects Public API" in incident.inner_text()
        assert "Secret admin panel" not in page.content()  # an incident names only the page's monitors
        assert "Draft nobody published" not in page.content()
        assert page.locator("[data-banner]").get_attribute("data-banner") == "partial"  # a major incident
        screenshot(page, "status-page-incident-1280-light")
        watched.assert_no_console_errors()


def test_a_conditional_get_answers_304_and_replies_carry_cache_headers(stack, infra):
    slug = unique("etag")
    seeded_page(infra, slug)
    first = get(stack, f"/{slug}")
    assert first.status_code == 200
    etag, cache_control = first.headers["etag"], first.headers["cache-control"]
    assert f"max-age={FRESH_SECONDS:g}" in cache_control and "stale-while-revalidate=" in cache_control
    again = get(stack, f"/{slug}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert get(stack, f"/{slug}", headers={"If-None-Match": '"something-else"'}).status_code == 200
    zipped = httpx.get(f"{stack.gateway_url}{BASE}/{slug}", headers={"Accept-Encoding": "gzip"}, timeout=60)
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == first.text


def svg_texts(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("image/svg+xml")
    assert "max-age=" in reply.headers["cache-control"] and reply.headers["etag"]
    root = ElementTree.fromstring(reply.content)
    assert root.tag == f"{SVG}svg"
    return [text.text for text in root.iter(f"{SVG}text")][
        1::2
    ]  # each label and message drawn twice (shadow)


def test_badges_are_valid_svg_with_the_right_text_in_kuma_and_gatus_shapes(stack, infra):
    slug = unique("badges")
    _, monitors = seeded_page(infra, slug)
    api = monitors["api"]
    kuma, gatus = f"/api/badge/{api}", f"/api/v1/endpoints/{api}"
    assert svg_texts(get(stack, f"{kuma}/status")) == ["status", "Operational"]
    assert svg_texts(get(stack, f"{kuma}/uptime/24h")) == ["uptime 24h", "100%"]
    assert svg_texts(get(stack, f"{kuma}/uptime/7d")) == ["uptime 7d", "100%"]
    assert svg_texts(get(stack, f"{kuma}/ping/24h")) == ["response time 24h", "120 ms"]
    assert svg_texts(get(stack, f"{kuma}/cert-exp")) == ["cert expiry", "N/A"]  # plain HTTP: no certificate
    assert svg_texts(get(stack, f"{gatus}/health/badge.svg")) == ["status", "Operational"]
    assert svg_texts(get(stack, f"{gatus}/uptimes/30d/badge.svg")) == ["uptime 30d", "100%"]
    assert svg_texts(get(stack, f"{gatus}/response-times/7d/badge.svg")) == ["response time 7d", "120 ms"]
    degraded = monitors["web"]
    assert svg_texts(get(stack, f"/api/badge/{degraded}/status")) == ["status", "Degraded in eu-central"]
    shields = get(stack, f"{gatus}/health/badge.shields").json()
    assert shields == {"schemaVersion": 1, "label": "status", "message": "Operational", "color": "green"}
    chart = ElementTree.fromstring(get(stack, f"{gatus}/response-times/24h/chart.svg").content)
    assert chart.tag == f"{SVG}svg" and "sparkline" in chart.get("class")
    statuses = get(stack, "/api/v1/endpoints/statuses").json()
    keys = {entry["key"] for entry in statuses}
    assert {str(api), str(degraded)} <= keys and str(monitors["hidden"]) not in keys
    entry = next(entry for entry in statuses if entry["key"] == str(api))
    assert entry["group"] == "Core" and entry["results"][-1]["success"] is True


def test_a_monitor_on_no_published_page_gets_an_na_badge(stack, infra):
    slug = unique("hidden")
    page_id, monitors = seeded_page(infra, slug)
    unpublished = insert_monitor(infra, "Unpublished", next_run_at=datetime.now(UTC) + timedelta(days=1))
    add_status_page(infra, unique("draft"), {"All": [unpublished]}, published=False)
    for monitor_id in (monitors["hidden"], unpublished, uuid.uuid4()):
        assert svg_texts(get(stack, f"/api/badge/{monitor_id}/status")) == ["status", "N/A"]
        assert svg_texts(get(stack, f"/api/v1/endpoints/{monitor_id}/uptimes/7d/badge.svg")) == [
            "uptime 7d",
            "N/A",
        ]
    refused = get(stack, "/api/badge/not-a-uuid/status")
    assert refused.status_code == 400 and "monitor_id" in refused.json()["error"]["message"]
    assert get(stack, f"/api/badge/{monitors['api']}/uptime/5y").status_code == 400


def test_an_unknown_slug_answers_a_plain_404_page(stack, browser):
    for path in (f"/{unique('nobody')}", "/Not_A_Slug", f"/{unique('nobody')}/feed.atom", "/x/y/z"):
        reply = get(stack, path)
        assert reply.status_code == 404, path
        assert reply.headers["content-type"].startswith("text/html")
        assert "Status page not found" in reply.text
    with watched_page(browser, viewport=PHONE) as watched:
        watched.page.goto(f"{stack.gateway_url}{BASE}/{unique('nobody')}")
        assert watched.page.get_by_role("heading", name="Status page not found").is_visible()
        watched.assert_no_console_errors(allowed=("status of 404",))  # Chromium logs the page's own 404


def test_a_custom_domain_reaches_its_page_by_host(stack, infra):
    slug = unique("domain")
    domain = f"{slug}.status.test"
    seeded_page(infra, slug, custom_domain=domain)
    time.sleep(
        FRESH_SECONDS
    )  # the table of domains is cached like the pages: a new domain shows within a period
    reply = get(stack, "/", headers={"X-Forwarded-Host": domain, "X-Forwarded-Proto": "https"})
    assert reply.status_code == 200 and "Public API" in reply.text
    assert 'href="/static/status.' in reply.text  # links from the domain's root, as the proxy maps it
    feed = get(stack, "/feed.atom", headers={"X-Forwarded-Host": domain})
    assert feed.status_code == 200
    root = ElementTree.fromstring(feed.content)
    assert root.find("{http://www.w3.org/2005/Atom}id").text == f"https://{domain}/feed.atom"
    unknown = get(stack, "/", headers={"X-Forwarded-Host": "nobody.example"})
    assert unknown.status_code == 404 and "Status page not found" in unknown.text


def test_the_feeds_parse_and_carry_incidents_and_maintenance(stack, infra):
    slug = unique("feeds")
    page_id, monitors = seeded_page(infra, slug)
    add_incident(infra, page_id, "Slow checkout", ["We are *looking*."], monitor_ids=[monitors["api"]])
    project = infra.sql("select project_id from status_pages where id = %s", (page_id,))[0][0]
    infra.sql(
        """insert into maintenance_windows (project_id, name, monitor_ids, starts_at, ends_at)
           values (%s, 'Database upgrade', %s, now() + interval '1 day', now() + interval '1 day 2 hours')""",
        (project, [monitors["db"]]),
    )
    infra.sql(
        """insert into maintenance_windows (project_id, name, monitor_ids, starts_at, ends_at)
           values (%s, 'Admin move', %s, now() + interval '1 day', now() + interval '1 day 2 hours')""",
        (project, [monitors["hidden"]]),
    )
    atom = ElementTree.fromstring(get(stack, f"/{slug}/feed.atom").content)
    titles = [entry.findtext("{http://www.w3.org/2005/Atom}title") for entry in atom]
    assert "[Investigating] Slow checkout" in titles and "[Maintenance] Database upgrade" in titles
    assert "[Maintenance] Admin move" not in titles  # a window of monitors on no page stays private
    document = get(stack, f"/{slug}/feed.json").json()
    assert document["version"] == "https://jsonfeed.org/version/1.1" and len(document["items"]) == 2
    calendar = get(stack, f"/{slug}/maintenance.ics")
    assert calendar.headers["content-type"].startswith("text/calendar")
    assert "SUMMARY:Maintenance: Database upgrade" in calendar.text and "Admin move" not in calendar.text
    page = get(stack, f"/{slug}").text
    assert "Scheduled:</strong> Database upgrade" in page and "Admin move" not in page
    assert json.loads(json.dumps(document))  # plain JSON


def page_reads(infra) -> int:
    """How often status_pages was looked up: a page read does it exactly once, by slug, as its first statement."""
    return infra.sql(
        "select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) from pg_stat_user_tables where relname = 'status_pages'"
    )[0][0]


def reported_page_reads(infra, settle_seconds: float = 12) -> int:
    """The count once every backend has reported: an idle backend flushes its counts within 10 s."""
    time.sleep(settle_seconds)
    return page_reads(infra)


def test_a_rush_of_readers_costs_one_page_read(stack, infra):
    slug = unique("rush")
    seeded_page(infra, slug)
    before = reported_page_reads(infra)  # earlier tests' reads, reported late, must not fall in the rush
    started = time.monotonic()

    # threads, not asyncio: the module's Playwright browser holds this thread's event loop
    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(lambda _: get(stack, f"/{slug}").status_code, range(100)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 100
    reads = reported_page_reads(infra) - before
    # one read for the hundred; a slow machine may let a period pass mid-rush, which allows one more per period
    assert 1 <= reads <= 1 + int(elapsed // FRESH_SECONDS), (reads, elapsed)


def test_the_incident_history_pages_through_published_incidents_newest_first(stack, infra):
    slug = unique("history")
    page_id, _ = seeded_page(infra, slug)
    for n in range(25):
        add_incident(infra, page_id, f"Incident {n:02d}", [f"Update of *incident {n}*"], status="resolved")
        infra.sql(
            "update incidents set created_at = now() - make_interval(hours => %s) where title = %s",
            (100 - n, f"Incident {n:02d}"),
        )
    add_incident(infra, page_id, "A draft", ["not public"], is_draft=True)
    first = get(stack, f"/{slug}/history")
    assert first.status_code == 200
    titles = re.findall(r'class="incident-title">([^<]+)<', first.text)
    assert titles == [f"Incident {n:02d}" for n in range(24, 4, -1)]
    assert "Page 1 of 2" in first.text and f'href="{BASE}/{slug}/history?page=2"' in first.text
    second = get(stack, f"/{slug}/history", params={"page": "2"})
    assert re.findall(r'class="incident-title">([^<]+)<', second.text) == [
        f"Incident {n:02d}" for n in range(4, -1, -1)
    ]
    assert "<em>incident 0</em>" in second.text and "A draft" not in first.text + second.text
    refused = get(stack, f"/{slug}/history", params={"page": "0"})
    assert refused.status_code == 400 and "page" in refused.json()["error"]["message"]
    assert f'href="{BASE}/{slug}/history"' in get(stack, f"/{slug}").text
