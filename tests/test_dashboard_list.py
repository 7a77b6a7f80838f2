"""The dashboard in Chromium against the real local stack: sign in, the monitor list live over SSE (a new
monitor appears, a failing one turns down, without a reload), search narrowing on the server, the regions and
alerts pages, sign-out, and a CSRF-less write refused. Screenshots of each page go to test-artifacts/."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.dashboard_browser import BASE, DESKTOP, PHONE, chromium, screenshot, sign_in, watched_page
from tests.factories import make_project
from tests.servers import LoopbackHttpServer

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def key(stack, aio) -> str:
    return make_project(aio, "dashboard list")


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def target():
    server = LoopbackHttpServer().start()
    yield server
    server.stop()


def api(stack, key: str, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.gateway_url}/function/api{path}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
        **kwargs,
    )


def create_monitor(stack, key: str, name: str, target: str, **extra) -> dict:
    body = {
        "name": name,
        "type": "http_request",
        "target": target,
        "frequencyMinutes": 60,
        "locationConfig": {"enabled": True, "locations": ["us-east", "eu-central"], "strategy": "all"},
        **extra,
    }
    reply = api(stack, key, "POST", "/monitors", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


def row_status(page, monitor_id: str):
    return page.locator(f'[data-monitor-id="{monitor_id}"] [data-status]')


def test_the_list_shows_a_new_monitor_and_its_fall_live_without_a_reload(stack, key, browser, target):
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key)
        page.get_by_role("heading", name="Monitors").wait_for()
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        monitor = create_monitor(stack, key, "live checkout", target.url, tags=["shop"])
        row = page.locator(f'[data-monitor-id="{monitor["id"]}"]')
        row.wait_for(timeout=30_000)
        status = row_status(page, monitor["id"])
        page.wait_for_function(
            "id => document.querySelector(`[data-monitor-id='${id}'] [data-status]`).dataset.status === 'up'",
            arg=monitor["id"],
            timeout=60_000,
        )
        assert row.locator(".target").inner_text() == target.url
        assert row.locator(".tag").inner_text() == "shop"

        target.status = 500
        assert api(stack, key, "POST", f"/monitors/{monitor['id']}/run").status_code == 202
        page.wait_for_function(
            "id => document.querySelector(`[data-monitor-id='${id}'] [data-status]`).dataset.status === 'down'",
            arg=monitor["id"],
            timeout=60_000,
        )
        assert status.locator(".status-word").text_content() == "down"
        assert page.evaluate("window.__sameDocument") is True
        page.wait_for_function(  # the throttled refresh brings the counts along
            "() => document.querySelector('[data-count=down] .count-value').textContent === '1'",
            timeout=30_000,
        )
        screenshot(page, "list-desktop-light")
        watched.assert_no_console_errors()


def test_search_filters_and_sorting_narrow_the_list_on_the_server(stack, key, browser):
    for name in ("alpha api", "alpha web", "beta api", "gamma db"):
        create_monitor(stack, key, name, f"http://127.0.0.1:9/{name.replace(' ', '-')}", enabled=False)
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key)
        search = page.get_by_label("Search")
        search.fill("alpha")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-monitor-id] .monitor-name')]"
            ".every(a => a.textContent.includes('alpha'))"
        )
        assert page.locator("[data-monitor-id]").count() == 2
        assert "search=alpha" in page.url  # the narrowed list can be bookmarked
        assert page.locator("[data-count=total] .count-value").inner_text() == "2"

        search.fill("")
        page.get_by_label("Sort", exact=True).select_option("-name")
        page.wait_for_function(
            "() => document.querySelector('[data-monitor-id] .monitor-name').textContent === 'live checkout'"
        )
        page.get_by_label("Status", exact=True).select_option("paused")
        page.wait_for_function("() => document.querySelectorAll('[data-monitor-id]').length === 4")
        assert set(
            page.locator("[data-monitor-id] [data-status]").evaluate_all("e => e.map(x => x.dataset.status)")
        ) == {"paused"}

        page.goto(f"{stack.gateway_url}{BASE}/?search=%25")  # a literal percent sign matches nothing here
        assert page.locator("[data-monitor-id]").count() == 0
        assert "No monitor matches" in page.locator("#monitor-rows").inner_text()
        watched.assert_no_console_errors()


def test_a_flapping_monitor_is_marked_in_the_list_and_on_its_page_at_both_widths(stack, key, browser, infra):
    # paused: no run of its own comes to rewrite the alert state this test sets
    monitor = create_monitor(stack, key, "flaky checkout", "http://127.0.0.1:9/", enabled=False)
    infra.sql("update monitors set alert_state = '{\"is_flapping\": true}' where id = %s", (monitor["id"],))
    for viewport, dark, name in ((DESKTOP, False, "desktop"), (PHONE, True, "phone-dark")):
        with watched_page(browser, viewport=viewport, dark=dark) as watched:
            page = watched.page
            sign_in(page, stack.gateway_url, key)
            badge = page.locator(f'[data-monitor-id="{monitor["id"]}"] [data-flapping]')
            assert badge.is_visible() and badge.inner_text() == "flapping"
            screenshot(page, f"list-flapping-{name}")
            page.goto(f"{stack.gateway_url}{BASE}/monitors/{monitor['id']}")
            header = page.locator("[data-monitor-status] [data-flapping]")
            assert header.is_visible() and "held back" in header.get_attribute("title")
            widest = page.evaluate("document.documentElement.scrollWidth")
            assert widest <= viewport["width"], f"the page scrolls sideways at {viewport['width']} px"
            screenshot(page, f"detail-flapping-{name}")
            watched.assert_no_console_errors()
    api(stack, key, "DELETE", f"/monitors/{monitor['id']}")


def test_the_list_works_by_keyboard_at_phone_width_and_in_dark_mode(stack, key, browser):
    with watched_page(browser, viewport=PHONE, dark=True) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key)
        page.keyboard.press("Tab")  # the skip link first
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Supercheck"
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # the menu opens from the keyboard
        assert page.get_by_role("link", name="Regions").is_visible()
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 18, 22)"  # the dark palette, following the system
        widest = page.evaluate("document.documentElement.scrollWidth")
        assert widest <= PHONE["width"], f"the page scrolls sideways at 390 px ({widest} px)"
        screenshot(page, "list-phone-dark")
        watched.assert_no_console_errors()


@pytest.mark.parametrize("path, heading", [("/regions", "Regions"), ("/alerts", "Alerts")])
def test_regions_and_alerts_pages_render_in_both_schemes_and_sizes(stack, key, browser, path, heading):
    for viewport, dark in ((DESKTOP, False), (PHONE, True)):
        with watched_page(browser, viewport=viewport, dark=dark) as watched:
            page = watched.page
            sign_in(page, stack.gateway_url, key, next_path=path)
            page.get_by_role("heading", name=heading, exact=True).wait_for()
            if path == "/regions":
                assert page.locator("[data-location]").count() == 3
                assert page.locator("[data-location=us-east] [data-figure=checks]").inner_text().isdigit()
            size = "desktop" if viewport is DESKTOP else "phone"
            screenshot(page, f"{path.strip('/')}-{size}-{'dark' if dark else 'light'}")
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            watched.assert_no_console_errors()


def test_sign_out_then_the_pages_refuse_and_a_csrf_less_write_is_refused(stack, key, browser):
    with watched_page(browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key)
        refused = page.evaluate(
            """async base => {
                 const reply = await fetch(`${base}/api/monitors`, {method: 'POST',
                   headers: {'Content-Type': 'application/json'},
                   body: JSON.stringify({name: 'forged', type: 'http_request', target: 'http://127.0.0.1:9/',
                                         frequencyMinutes: 5})});
                 return [reply.status, (await reply.json()).error.code];
               }""",
            BASE,
        )
        assert refused == [403, "csrf_refused"]
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login$"))
        page.goto(f"{stack.gateway_url}{BASE}/regions")
        assert "/login?next=" in page.url
        assert page.get_by_label("API key").is_visible()
        door = page.evaluate(f"fetch('{BASE}/api/monitors').then(r => r.status)")
        assert door == 401
        watched.assert_no_console_errors(allowed=(r"status of 40[13]",))


def test_a_monitor_created_through_the_form_appears_live_in_the_list_open_in_another_tab(
    stack, key, browser, target
):
    with watched_page(browser) as watched:
        lister = watched.page
        sign_in(lister, stack.gateway_url, key)
        lister.get_by_role("heading", name="Monitors").wait_for()
        lister.evaluate("window.__sameDocument = true")
        former = watched.context.new_page()  # the same session, in a second tab
        former.goto(f"{stack.gateway_url}{BASE}/monitors/new")
        former.get_by_label("Name", exact=True).filter(visible=True).fill("made in the form")
        former.get_by_label("URL", exact=True).filter(visible=True).fill(target.url + "form")
        former.get_by_role("button", name="Create monitor").click()
        former.wait_for_url(re.compile(rf"{BASE}/monitors/[0-9a-f-]{{36}}$"))
        monitor_id = former.url.rsplit("/", 1)[-1]
        lister.locator(f'[data-monitor-id="{monitor_id}"]').wait_for(timeout=30_000)
        assert lister.evaluate("window.__sameDocument") is True
        assert "made in the form" in lister.locator(f'[data-monitor-id="{monitor_id}"]').inner_text()
        watched.assert_no_console_errors()
