"""The monitor detail page (/function/dashboard/monitors/{id}): in process over seeded rows, each section as the
API answers it (header and actions, status per location, the response-time chart and its range switcher,
timing phases, 90 daily uptime bars, incidents, results filtered and paged, the certificate, a synthetic
test's artifacts, alert history), another project's monitor a 404 and a hostile name escaped; then in
Chromium against the real local stack: the chart drawn, pause and resume, the status turning down live, the
alert history of a webhook, the keyboard, and screenshots at both widths in both schemes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import httpx
import pytest
from psycopg.types.json import Jsonb

from shared import auth, db
from tests.api_client import function_app
from tests.factories import add_provider, add_result, add_rollup, record_run, set_marks

BASE = "/function/dashboard"
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def fresh_now():
    """Each test's data is placed relative to its own start: read once at import, NOW would be minutes old by
    the time a long run reaches a test, and data near a window's edge would fall outside it."""
    global NOW
    NOW = datetime.now(UTC)


# --- in process ----------------------------------------------------------------------------------------------


class Browser:
    """A cookie-keeping client of the dashboard app, signed in with one project's key."""

    def __init__(self, aio, key: str):
        self.aio = aio
        self.cookies = httpx.Cookies()
        form = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        signed_in = self.request("POST", "/login", data={"api_key": key, "csrf": token, "next": ""})
        assert signed_in.status_code == 303, signed_in.text

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def go():
            transport = httpx.ASGITransport(app=function_app("dashboard"))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8080", cookies=self.cookies, timeout=60
            ) as client:
                response = await client.request(method, f"{BASE}{path}", **kwargs)
                self.cookies = httpx.Cookies(client.cookies)
                return response

        return self.aio.run(go())

    def get(self, path: str, **params) -> httpx.Response:
        return self.request("GET", path, params=params)

    def page(self, monitor_id, **params) -> Page:
        reply = self.get(f"/monitors/{monitor_id}", **params)
        assert reply.status_code == 200, reply.text
        return Page(reply.text)


class Page:
    """A rendered page, queried by the data attributes the templates carry."""

    def __init__(self, html: str):
        self.html = html
        self.elements: list[tuple[str, dict[str, str]]] = []  # tag and attributes, in document order
        parser = _Collector(self)
        parser.feed(html)
        parser.close()

    def find(self, tag: str | None = None, **attributes: str | None) -> list[dict[str, str]]:
        """Elements whose attributes include these (a value of None: the attribute present, any value)."""
        found = []
        for name, attrs in self.elements:
            if tag and name != tag:
                continue
            if all(
                key in attrs and (value is None or attrs[key] == value)
                for key, value in ((k.replace("_", "-"), v) for k, v in attributes.items())
            ):
                found.append(attrs)
        return found

    def section(self, name: str) -> str:
        """The markup of <section data-section=name>, to search within."""
        start = self.html.index(f'data-section="{name}"')
        return self.html[start : self.html.index("</section>", start)]

    def text(self, name: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", self.section(name))).strip()


class _Collector(HTMLParser):
    def __init__(self, page: Page):
        super().__init__(convert_charrefs=True)
        self.page = page

    def handle_starttag(self, tag, attrs):
        self.page.elements.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def new_project(aio, name: str) -> tuple[uuid.UUID, str]:
    async def create():
        async with db.transaction() as conn:
            project = await (
                await conn.execute("insert into projects (name) values (%s) returning id", (name,))
            ).fetchone()
            _, key = await auth.store_key(conn, project["id"], "test")
            return project["id"], key

    return aio.run(create())


def add_monitor(
    infra,
    project_id,
    name: str = "Checkout",
    *,
    type: str = "http_request",
    target: str = "https://shop.example.net/cart",
    locations=("eu-central", "us-east"),
    config: dict | None = None,
    tags=("shop",),
    status: str = "up",
    enabled: bool = True,
) -> uuid.UUID:
    return infra.sql(
        """insert into monitors (project_id, name, type, target, config, frequency_minutes, enabled,
                                 location_config, tags, status, last_check_at)
           values (%s, %s, %s, %s, %s, 5, %s, %s, %s, %s, %s) returning id""",
        (
            project_id,
            name,
            type,
            target,
            Jsonb(config or {}),
            enabled,
            Jsonb({"enabled": True, "locations": list(locations), "strategy": "all"}),
            list(tags),
            status,
            NOW - timedelta(minutes=2),
        ),
    )[0][0]


def set_last_run(infra, monitor_id, run_id, finalized: bool = True, missing=()) -> None:
    infra.sql(
        """update runs set finalized_at = case when %s then scheduled_at + interval '30 seconds' end,
                  status = 'up', missing_locations = %s where id = %s""",
        (finalized, list(missing), run_id),
    )
    infra.sql("update monitors set last_run_id = %s where id = %s", (run_id, monitor_id))


@pytest.fixture
def project(clean, aio):
    project_id, key = new_project(aio, "detail")
    return project_id, Browser(aio, key)


# --- header, actions, escaping, scope -------------------------------------------------------------------------


def test_the_header_names_the_monitor_with_its_status_target_tags_and_actions(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(
        clean,
        project_id,
        target="https://user:hunter2@shop.example.net/cart?token=abc",
        tags=("shop", "eu"),
        status="down",
    )
    page = browser.page(monitor_id)
    assert '<h1 class="monitor-title">Checkout</h1>' in page.html
    header = page.html[page.html.index("data-monitor-status") :].split("</dd>")[0]
    assert 'class="status status-down" data-status="down"' in header and ">down</span>" in header
    assert "hunter2" not in page.html  # the API masks a target's credentials; the page shows what it says
    assert [tag["href"] for tag in page.find("a", **{"class": "tag"})] == [
        f"{BASE}/?tag=shop",
        f"{BASE}/?tag=eu",
    ]
    assert page.find("a", href=f"{BASE}/monitors/{monitor_id}/edit")
    actions = {a["data-action"]: a for a in page.find("button", data_api_action=None)}
    assert actions["pause"]["data-path"] == f"/monitors/{monitor_id}/pause"
    assert actions["run"]["data-path"] == f"/monitors/{monitor_id}/run" and "data-stay" in actions["run"]
    assert actions["delete"]["data-method"] == "DELETE" and actions["delete"]["data-redirect"] == "/"
    assert "Checkout" in actions["delete"]["data-confirm"]
    assert "<dt>Every</dt><dd>5 min</dd>" in page.html
    assert page.find("time", data_local=None)[0]["datetime"].startswith(
        str((NOW - timedelta(minutes=2)).date())
    )


def test_a_paused_monitor_offers_resume_and_reads_paused(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id, enabled=False, status="up")
    page = browser.page(monitor_id)
    actions = {a["data-action"]: a for a in page.find("button", data_api_action=None)}
    assert "pause" not in actions and actions["resume"]["data-path"] == f"/monitors/{monitor_id}/resume"
    assert "disabled" not in actions["run"]  # a paused monitor may still be run once, as the API allows
    assert page.find("span", data_status=None)[0]["data-status"] == "paused"  # the header's, first


def test_a_flapping_monitor_says_so_on_its_page_and_in_the_list(project, clean):
    project_id, browser = project
    flapping = add_monitor(clean, project_id, name="Flaky", status="down")
    steady = add_monitor(clean, project_id, name="Steady", status="up")
    clean.sql("update monitors set alert_state = %s where id = %s", (Jsonb({"is_flapping": True}), flapping))
    (badge,) = browser.page(flapping).find("span", data_flapping=None)
    assert "alerts are held back" in badge["title"]
    assert not browser.page(steady).find("span", data_flapping=None)
    listed = Page(browser.get("/").text)
    assert len(listed.find("span", data_flapping=None)) == 1
    row = listed.html[listed.html.index(f'data-monitor-id="{flapping}"') :].split("</tr>")[0]
    assert "data-flapping" in row


def test_a_hostile_monitor_name_is_escaped_everywhere(project, clean):
    project_id, browser = project
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    monitor_id = add_monitor(clean, project_id, name=hostile, tags=('"><b>x',))
    add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=5), 120, phases=(1, 2, 3, 4))
    page = browser.page(monitor_id)
    assert "<script>alert" not in page.html and "<img src=x" not in page.html and "<b>x" not in page.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.html
    # the chart's accessible name carries it too, escaped by charts.py
    assert page.find("svg", **{"class": "chart response-time"})[0]["aria-label"].startswith(
        "Response time of <script>"
    )


def test_another_projects_monitor_is_not_found(project, clean, aio):
    _, browser = project
    other_project, _ = new_project(aio, "other")
    theirs = add_monitor(clean, other_project, name="Their secret monitor")
    reply = browser.get(f"/monitors/{theirs}")
    assert reply.status_code == 404
    assert "Their secret monitor" not in reply.text
    assert browser.get(f"/monitors/{theirs}", fragment="results").status_code == 404
    assert browser.get(f"/monitors/{uuid.uuid4()}").status_code == 404
    assert browser.get("/monitors/not-a-uuid").status_code == 404


def test_signed_out_the_page_sends_to_sign_in(clean, aio, project):
    project_id, _ = project
    monitor_id = add_monitor(clean, project_id)

    async def go():
        transport = httpx.ASGITransport(app=function_app("dashboard"))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
            return await client.get(f"{BASE}/monitors/{monitor_id}")

    reply = aio.run(go())
    assert reply.status_code == 303 and "/login?next=" in reply.headers["location"]


# --- status per location --------------------------------------------------------------------------------------


def test_each_location_shows_its_status_in_the_last_run_and_its_figures(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id, locations=("eu-central", "us-east", "asia-pacific"))
    for minutes in (30, 20, 10):
        record_run(clean, monitor_id, NOW - timedelta(minutes=minutes), {"eu-central": "up", "us-east": "up"})
    add_result(clean, monitor_id, "asia-pacific", NOW - timedelta(hours=2), 80)  # before it stopped answering
    last = record_run(clean, monitor_id, NOW - timedelta(minutes=1), {"eu-central": "up", "us-east": "down"})
    clean.sql(
        "update runs set expected_locations = '{eu-central,us-east,asia-pacific}' where id = %s", (last,)
    )
    set_last_run(clean, monitor_id, last, missing=("asia-pacific",))
    page = browser.page(monitor_id)
    cards = {card["data-location"]: card for card in page.find("li", **{"class": "location-card"})}
    assert list(cards) == ["eu-central", "us-east", "asia-pacific"]
    section = page.section("locations")
    statuses = re.findall(r'data-location="([^"]+)".*?data-status="([^"]+)"', section, flags=re.S)
    assert statuses == [("eu-central", "up"), ("us-east", "down"), ("asia-pacific", "missing")]
    text = page.text("locations")
    assert "no answer from asia-pacific" in text
    assert "75.00 %" in text  # us-east: 3 of 4 results up over the last 7 days
    assert "10 · 10 ms" in text  # record_run's results all answer in 10 ms


def test_without_any_run_the_locations_are_unknown(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id, status="pending")
    page = browser.page(monitor_id)
    statuses = re.findall(r'data-location="([^"]+)".*?data-status="([^"]+)"', page.section("locations"), re.S)
    assert statuses == [("eu-central", "unknown"), ("us-east", "unknown")]


# --- the response-time chart, its range switcher, the phases ------------------------------------------------


def test_the_chart_draws_each_locations_points_for_the_default_24_hours(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    for index in range(6):
        at = NOW - timedelta(hours=index * 3 + 1)
        add_result(clean, monitor_id, "eu-central", at, 100 + index, phases=(5, 10, 20, 60))
        add_result(
            clean, monitor_id, "us-east", at + timedelta(seconds=30), 200 + index, phases=(6, 11, None, 70)
        )
    add_result(clean, monitor_id, "us-east", NOW - timedelta(days=3), 900)  # outside 24 h
    page = browser.page(monitor_id)
    (container,) = page.find("div", data_chart="response-time")
    assert container["data-range"] == "24h"
    points = page.find("circle", **{"class": "point"})
    assert len(points) == 12
    assert {p["data-location"] for p in points} == {"eu-central", "us-east"}
    assert "900" not in {p["data-value"] for p in points}
    assert sorted(float(p["data-value"]) for p in points if p["data-location"] == "eu-central") == [
        100,
        101,
        102,
        103,
        104,
        105,
    ]
    # the phases: one stacked chart per location, DNS..first byte, TLS absent where the check had none
    phase_section = page.html[page.html.index('data-chart="phases"') :]
    assert page.find("figure", data_location="eu-central") and page.find("figure", data_location="us-east")
    assert len(page.find("svg", **{"class": "chart phases"})) == 2
    assert 'class="phase-tls"' in phase_section.split('data-location="us-east"')[0]
    us_east = phase_section.split('data-location="us-east"')[1]
    assert 'class="phase-tls"' not in us_east.split("</figure>")[0]


@pytest.mark.parametrize("range_name", ["1h", "24h", "7d", "30d", "90d"])
def test_the_range_switcher_links_every_range_and_marks_the_current_one(project, clean, range_name):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=20), 150)
    page = browser.page(monitor_id, range=range_name)
    links = page.find("a", data_range=None)
    assert [link["data-range"] for link in links] == ["1h", "24h", "7d", "30d", "90d"]
    assert [link["href"].split("#")[0] for link in links] == [
        f"{BASE}/monitors/{monitor_id}?range={r}" for r in ("1h", "24h", "7d", "30d", "90d")
    ]
    assert [link["data-range"] for link in links if link.get("aria-current")] == [range_name]
    assert page.find("div", data_chart="response-time")[0]["data-range"] == range_name
    assert len(page.find("circle", **{"class": "point"})) == 1  # 20 minutes ago lies in every range


def test_the_range_changes_what_the_chart_shows(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=20), 150)
    rolled = _day(NOW - timedelta(days=2))
    set_marks(clean, rollup_hourly_through=rolled, rollup_daily_through=rolled, raw_complete_from=rolled)
    add_rollup(clean, "rollup_daily", monitor_id, "eu-central", _day(NOW - timedelta(days=20)), [300, 500], 2)
    short = browser.page(monitor_id, range="1h")
    assert [p["data-value"] for p in short.find("circle", **{"class": "point"})] == ["150"]
    assert "last hour" in short.find("svg", **{"class": "chart response-time"})[0]["aria-label"]
    month = browser.page(monitor_id, range="30d")
    assert "400" in [p["data-value"] for p in month.find("circle", **{"class": "point"})]


def test_an_unknown_range_is_the_apis_400_naming_it(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    reply = browser.get(f"/monitors/{monitor_id}", range="1y")
    assert reply.status_code == 400 and "range" in reply.text


def test_a_monitor_without_results_says_so_in_its_charts(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id, status="pending")
    page = browser.page(monitor_id)
    assert "No results in this range" in page.section("response-time")
    assert "No timing phases in this range" in page.section("response-time")
    assert page.find("circle", **{"class": "point"}) == []
    assert "No results yet" in page.section("results")
    assert "No incident in the last 90 days" in page.section("incidents")
    assert "No alert sent for this monitor yet" in page.section("alerts")


# --- daily uptime ---------------------------------------------------------------------------------------------


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def test_ninety_daily_bars_each_with_its_tooltip(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    rolled = _day(NOW - timedelta(days=2))
    set_marks(clean, rollup_hourly_through=rolled, rollup_daily_through=rolled, raw_complete_from=rolled)
    add_rollup(clean, "rollup_daily", monitor_id, "eu-central", _day(NOW - timedelta(days=10)), [100] * 4, 3)
    add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=3), 100)
    page = browser.page(monitor_id)
    days = page.find("span", role="listitem")
    assert len(days) == 90
    assert days[-1]["data-day"] == NOW.date().isoformat()
    assert days[0]["data-day"] == (NOW.date() - timedelta(days=89)).isoformat()
    bad_day = (NOW.date() - timedelta(days=10)).isoformat()
    (bad,) = [d for d in days if d["data-day"] == bad_day]
    assert bad["data-uptime"] == "75" and "bad" in bad["class"]
    assert bad["aria-label"] == f"{bad_day}: 75% up, 4 checks"
    assert days[-1]["data-uptime"] == "100"
    assert sum("none" in d["class"] for d in days) == 88
    assert "80.00 % of 5 checks" in page.text("uptime")


# --- incidents ------------------------------------------------------------------------------------------------


def test_incidents_list_each_status_change_period_with_its_duration(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id, status="down")
    # the ongoing one from the test's own clock: NOW was read at import, maybe minutes ago in a long run
    opened = datetime.now(UTC) - timedelta(minutes=30)
    changes = [
        ("up", "down", NOW - timedelta(days=2, hours=3)),
        ("down", "up", NOW - timedelta(days=2, hours=1, minutes=55)),  # 1 h 05 min
        ("up", "degraded", NOW - timedelta(hours=5)),
        ("degraded", "up", NOW - timedelta(hours=4, minutes=48)),  # 12 min
        ("up", "down", opened),  # ongoing
    ]
    for before, after, at in changes:
        run_id = record_run(clean, monitor_id, at, {"eu-central": after})
        clean.sql(
            """insert into status_changes (monitor_id, run_id, from_status, to_status, changed_at)
               values (%s, %s, %s, %s, %s)""",
            (monitor_id, run_id, before, after, at),
        )
    page = browser.page(monitor_id)
    elapsed = datetime.now(UTC) - opened
    section = page.section("incidents")
    rows = re.findall(
        r"<tr data-incident( data-ongoing)?>.*?data-status=\"(\w+)\".*?data-duration>([^<]+)<", section, re.S
    )
    assert [(bool(ongoing), status) for ongoing, status, _ in rows] == [
        (True, "down"),
        (False, "degraded"),
        (False, "down"),
    ]
    assert rows[0][2] in {f"{minutes} min" for minutes in range(30, int(elapsed.total_seconds() // 60) + 1)}
    assert [duration for _, _, duration in rows[1:]] == ["12 min", "1 h 05 min"]
    assert "ongoing" in page.text("incidents")


# --- results: filters, pages, time zone ---------------------------------------------------------------------


def test_results_are_paged_and_filtered_by_location_and_by_the_browsers_day(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    for index in range(25):
        add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=10 * index + 1), 100 + index)
    add_result(clean, monitor_id, "us-east", NOW - timedelta(minutes=7), 333, status="down")
    page = browser.page(monitor_id)
    assert len(page.find("tr", data_result_id=None)) == 20
    assert 'data-pager="page"' in page.section("results")
    (next_link,) = page.find("a", rel="next")[:1]
    assert "page=2" in next_link["href"]
    second = browser.page(monitor_id, page="2")
    assert len(second.find("tr", data_result_id=None)) == 6

    only_us = browser.page(monitor_id, location="us-east")
    assert [row["data-location"] for row in only_us.find("tr", data_result_id=None)] == ["us-east"]
    assert only_us.find("option", value="us-east", selected=None)
    # the fragment is the table alone, with the same filters
    fragment = browser.get(f"/monitors/{monitor_id}", location="us-east", fragment="results")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.count("data-result-id=") == 1

    # the day filter is the browser's local day: the hidden field carries getTimezoneOffset()
    assert page.find("input", name="timezoneOffset", data_timezone_offset=None)
    at = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # 1 March in UTC, 2 March at UTC+2
    add_result(clean, monitor_id, "eu-central", at, 42)
    utc_day = Page(browser.get(f"/monitors/{monitor_id}", date="2026-03-01", fragment="results").text)
    assert len(utc_day.find("tr", data_result_id=None)) == 1
    plus_two = Page(
        browser.get(
            f"/monitors/{monitor_id}", date="2026-03-02", timezoneOffset="-120", fragment="results"
        ).text
    )
    assert len(plus_two.find("tr", data_result_id=None)) == 1
    assert "42 ms" in plus_two.html
    empty = browser.get(f"/monitors/{monitor_id}", date="2026-03-02", fragment="results")
    assert "No result matches these filters" in empty.text
    (shown,) = plus_two.find("time", data_local=None)  # an instant, which the browser shows in its own zone
    assert shown["datetime"].startswith("2026-03-01T23:30")


def test_the_pager_keeps_the_filters_and_the_range(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    for index in range(22):
        add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=index + 1), 100)
    page = browser.page(monitor_id, range="7d", location="eu-central")
    (next_link,) = page.find("a", rel="next")[:1]
    assert next_link["href"].startswith(f"{BASE}/monitors/{monitor_id}?")
    query = next_link["href"].split("?")[1].split("#")[0]
    assert sorted(query.split("&")) == ["location=eu-central", "page=2", "range=7d"]
    assert page.find("input", type="hidden", name="range", value="7d")


# --- the certificate ------------------------------------------------------------------------------------------


def ssl_facts(days: int, fingerprint: str = "AB:CD") -> dict:
    return {
        "ssl": {
            "validFrom": (NOW - timedelta(days=30)).isoformat(),
            "validTo": (NOW + timedelta(days=days)).isoformat(),
            "issuer": "CN=Test CA, O=Example",
            "subject": "CN=shop.example.net",
            "sans": ["shop.example.net", "www.shop.example.net"],
            "serialNumber": "0123",
            "sha256Fingerprint": fingerprint,
        }
    }


def test_the_certificate_shows_expiry_days_issuer_and_names(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    for location in ("eu-central", "us-east"):
        add_result(clean, monitor_id, location, NOW - timedelta(minutes=4), 90, details=ssl_facts(45))
    page = browser.page(monitor_id)
    text = page.text("certificate")
    assert page.find("div", data_certificate="valid")
    assert len(page.find("div", data_certificate=None)) == 1  # one certificate, seen from both locations
    assert "45" in re.search(r"data-days-remaining>([^<]+)<", page.section("certificate")).group(1)
    assert "CN=Test CA, O=Example" in text and "www.shop.example.net" in text
    assert "eu-central, us-east" in text


def test_a_certificate_near_its_end_is_marked(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    add_result(clean, monitor_id, "eu-central", NOW - timedelta(minutes=4), 90, details=ssl_facts(5))
    assert browser.page(monitor_id).find("div", data_certificate="expiring")


def test_the_certificate_section_is_left_out_without_tls(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id, target="http://shop.example.net/")
    page = browser.page(monitor_id)
    assert 'data-section="certificate"' not in page.html


# --- a synthetic test's runs ----------------------------------------------------------------------------------


def test_a_synthetic_monitors_runs_link_their_report_screenshot_and_trace(project, clean):
    project_id, browser = project
    test_id = clean.sql(
        """insert into synthetic_tests (project_id, title, script) values (%s, 'Sign-up', 'await page.goto("/")')
           returning id""",
        (project_id,),
    )[0][0]
    monitor_id = add_monitor(
        clean,
        project_id,
        name="Sign-up journey",
        type="synthetic_test",
        target=str(test_id),
        config={"testId": str(test_id)},
    )
    prefix = f"https://artifacts.example.net/synthetic/{monitor_id}/run/eu-central"
    add_result(
        clean,
        monitor_id,
        "eu-central",
        NOW - timedelta(minutes=6),
        2300,
        details={
            "testId": str(test_id),
            "reportUrl": f"{prefix}/report.html",
            "artifacts": {
                "trace.zip": f"{prefix}/trace.zip",
                "screenshot.png": f"{prefix}/screenshot.png",
                "report.html": f"{prefix}/report.html",
                "errors.json": f"{prefix}/errors.json",
            },
        },
    )
    add_result(
        clean,
        monitor_id,
        "eu-central",
        NOW - timedelta(minutes=1),
        900,
        status="down",
        details={
            "errorMessage": "locator.click: Timeout 5000ms",
            "artifactsSkipped": "S3_BUCKET is not set",
        },
    )
    page = browser.page(monitor_id)
    assert "Test runs" in page.section("results")
    rows = page.section("results").split("data-result-id=")[1:]
    newest, older = rows
    assert "S3_BUCKET is not set" in newest and "/artifacts/" not in newest
    assert "locator.click: Timeout 5000ms" in newest
    links = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', older)
    older_id = re.match(r'"(\d+)"', older).group(1)
    door = f"/function/dashboard/api/monitors/{monitor_id}/results/{older_id}/artifacts"
    assert links == [
        (f"{door}/report.html", "HTML report"),
        (f"{door}/screenshot.png", "Screenshot"),
        (f"{door}/trace.zip", "Trace"),
    ]
    assert prefix not in page.html  # the bucket's own addresses never reach the page
    assert 'data-section="certificate"' not in page.html


# --- alert history --------------------------------------------------------------------------------------------


def test_the_alert_history_lists_every_delivery_per_provider_paged(project, clean):
    project_id, browser = project
    monitor_id = add_monitor(clean, project_id)
    hook = add_provider(clean, {"url": "https://hooks.example.net/x"}, name="Ops hook", project=project_id)
    mail = add_provider(clean, {"url": "https://hooks.example.net/y"}, name="Ops mail", project=project_id)
    start = NOW - timedelta(hours=30)
    for index in range(12):
        clean.sql(
            """insert into alert_history (monitor_id, run_id, provider_id, kind, status, attempts, title, error,
                                          created_at)
               values (%s, %s, %s, %s, %s, %s, 'Monitor Down - Checkout', %s, %s)""",
            (
                monitor_id,
                uuid.uuid4(),
                hook if index % 2 else mail,
                "failure" if index % 3 else "recovery",
                "failed" if index == 11 else "sent",
                3 if index == 11 else 1,
                "HTTP 500 from the hook" if index == 11 else None,
                start + timedelta(hours=index),
            ),
        )
    page = browser.page(monitor_id)
    rows = page.find("tr", data_alert_id=None)
    assert len(rows) == 10
    section = page.section("alerts")
    first = section.split("data-alert-id=")[1]
    assert "Ops hook" in first and 'data-delivery="failed"' in first and "HTTP 500 from the hook" in first
    assert "after 3 attempts" in first and "failure" in first
    assert "Ops mail" in section and "recovery" in section
    (next_link,) = page.find("a", rel="next")
    assert "alertsPage=2" in next_link["href"]
    second = browser.page(monitor_id, alertsPage="2")
    assert len(second.find("tr", data_alert_id=None)) == 2


# --- in Chromium, against the real local stack ---------------------------------------------------------------

browser_test = pytest.mark.timeout(600)

# A seeded monitor for the screenshots: 90 days of hourly results in three locations (with phases, an outage,
# a certificate), incidents and alerts, all as rows; scheduled a day ahead, so no check of its own runs.
_SEED_SHOWCASE = """
with r as (
    insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
    select %(monitor)s, t, '{us-east,eu-central,asia-pacific}', t + interval '1 minute', t + interval '40 seconds',
           'up'
    from generate_series(date_trunc('hour', now()) - interval '89 days', now() - interval '1 minute',
                         interval '1 hour') t
    returning id, scheduled_at
)
insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms, dns_ms,
                             connect_ms, tls_ms, first_byte_ms, status_code, message, details)
select r.id, %(monitor)s, loc, s.status, r.scheduled_at + interval '5 seconds',
       case when s.status = 'down' then null else base + h %% 60 end, 4 + h %% 5, 10 + h %% 9, 18 + h %% 11,
       base - 40, case when s.status = 'down' then 503 else 200 end,
       case when s.status = 'down' then 'HTTP 503 Service Unavailable' else 'HTTP 200 OK' end,
       jsonb_build_object('ssl', jsonb_build_object(
           'validFrom', (now() - interval '60 days')::text, 'validTo', (now() + interval '29 days')::text,
           'issuer', 'CN=R11, O=Let''s Encrypt, C=US', 'subject', 'CN=shop.example.net',
           'sans', jsonb_build_array('shop.example.net', 'www.shop.example.net', 'api.shop.example.net'),
           'serialNumber', '04A1', 'sha256Fingerprint', '3F:9A:11:C2:7B:DE:45:00:AA:19:82:6E:0B:5C:D4:E7'))
from r
cross join unnest('{us-east,eu-central,asia-pacific}'::text[]) as loc
cross join lateral (select abs(hashtext(r.id::text || loc)) as h,
                           case loc when 'us-east' then 90 when 'eu-central' then 140 else 260 end as base) x
cross join lateral (
    select case when r.scheduled_at between now() - interval '12 days 3 hours' and now() - interval '12 days'
                  or (loc = 'asia-pacific' and h %% 97 = 0) then 'down' else 'up' end as status
) s
"""


def seed_showcase(infra, project_id) -> uuid.UUID:
    monitor_id = infra.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, location_config, tags, status,
                                 next_run_at, last_check_at)
           values (%s, 'Shop checkout', 'http_request', 'https://shop.example.net/checkout', 60, %s,
                   '{shop,critical}', 'up', now() + interval '1 day', now() - interval '1 minute') returning id""",
        (
            project_id,
            Jsonb(
                {"enabled": True, "locations": ["us-east", "eu-central", "asia-pacific"], "strategy": "all"}
            ),
        ),
    )[0][0]
    infra.sql(_SEED_SHOWCASE, {"monitor": monitor_id})
    last = infra.sql(
        "select id from runs where monitor_id = %s order by scheduled_at desc limit 1", (monitor_id,)
    )[0][0]
    infra.sql("update monitors set last_run_id = %s where id = %s", (last, monitor_id))
    for before, after, ago in (
        ("up", "down", "12 days 3 hours"),
        ("down", "up", "12 days"),
        ("up", "degraded", "3 days 2 hours"),
        ("degraded", "up", "3 days 1 hour"),
    ):
        run_id = infra.sql(
            """select id from runs where monitor_id = %s order by abs(extract(epoch from
                   scheduled_at - (now() - %s::interval))) limit 1""",
            (monitor_id, ago),
        )[0][0]
        infra.sql(
            """insert into status_changes (monitor_id, run_id, from_status, to_status, changed_at)
               values (%s, %s, %s, %s, now() - %s::interval) on conflict do nothing""",
            (monitor_id, run_id, before, after, ago),
        )
    hook = add_provider(
        infra, {"url": "https://hooks.example.net/ops"}, name="Ops webhook", project=project_id
    )
    for kind, status, error, ago in (
        ("failure", "sent", None, "12 days 3 hours"),
        ("failure", "failed", "HTTP 502 from hooks.example.net", "12 days 2 hours"),
        ("recovery", "sent", None, "12 days"),
    ):
        infra.sql(
            """insert into alert_history (monitor_id, run_id, provider_id, kind, status, attempts, title, error,
                                          created_at)
               values (%s, %s, %s, %s, %s, %s, 'Monitor Down - Shop checkout', %s, now() - %s::interval)""",
            (monitor_id, uuid.uuid4(), hook, kind, status, 3 if error else 1, error, ago),
        )
    return monitor_id


@pytest.fixture(scope="module")
def detail_project(stack, aio):
    return new_project(aio, "dashboard detail")


@pytest.fixture(scope="module")
def chromium_browser():
    from tests.dashboard_browser import chromium

    with chromium() as launched:
        yield launched


def gateway_api(stack, key: str, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.gateway_url}/function/api{path}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
        **kwargs,
    )


def create_loopback_monitor(stack, key: str, name: str, target: str, **extra) -> dict:
    body = {
        "name": name,
        "type": "http_request",
        "target": target,
        "frequencyMinutes": 60,
        "locationConfig": {"enabled": True, "locations": ["us-east", "eu-central"], "strategy": "all"},
        **extra,
    }
    reply = gateway_api(stack, key, "POST", "/monitors", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


def wait_for_results(stack, key: str, monitor_id: str, count: int) -> None:
    from tests.servers import wait_until

    wait_until(
        lambda: (
            gateway_api(stack, key, "GET", f"/monitors/{monitor_id}/results").json()["pagination"]["total"]
            >= count
        ),
        timeout=60,
        message=f"{count} results of {monitor_id}",
    )


def header_status(page) -> str:
    return page.locator("[data-monitor-status] [data-status]").get_attribute("data-status")


def wait_header_status(page, status: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        "s => document.querySelector('[data-monitor-status] [data-status]').dataset.status === s",
        arg=status,
        timeout=timeout,
    )


@browser_test
def test_a_loopback_monitor_draws_its_chart_and_turns_down_live(
    stack, detail_project, chromium_browser, http_target
):
    from tests.dashboard_browser import screenshot, sign_in, watched_page

    _, key = detail_project
    monitor = create_loopback_monitor(stack, key, "Loopback shop", http_target.url)
    wait_for_results(stack, key, monitor["id"], 2)
    with watched_page(chromium_browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key, next_path=f"/monitors/{monitor['id']}")
        page.get_by_role("heading", name="Loopback shop").wait_for()
        wait_header_status(page, "up")
        assert page.locator('[data-chart="response-time"] circle.point').count() > 0
        assert page.locator('[data-chart="daily-uptime"] .day').count() == 90
        assert page.locator("[data-results] tr[data-result-id]").count() == 2
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        http_target.status = 500
        page.get_by_role("button", name="Run now").click()
        wait_header_status(page, "down")
        for location in ("us-east", "eu-central"):
            page.wait_for_function(
                "l => document.querySelector(`.location-card[data-location='${l}'] [data-status]`)"
                ".dataset.status === 'down'",
                arg=location,
                timeout=30_000,
            )
        # the throttled refresh brings the new results into the table
        page.wait_for_function(
            "() => document.querySelectorAll('[data-results] tr[data-result-id] [data-status=down]').length === 2",
            timeout=30_000,
        )
        assert page.evaluate("window.__sameDocument") is True
        assert page.locator("#toast").inner_text().startswith(("Status changed", "Run started"))
        screenshot(page, "detail-loopback-desktop-light")
        watched.assert_no_console_errors()


@browser_test
def test_pause_and_resume_through_the_buttons(stack, detail_project, chromium_browser, http_target):
    from tests.dashboard_browser import sign_in, watched_page

    _, key = detail_project
    monitor = create_loopback_monitor(stack, key, "Pausable", http_target.url)
    wait_for_results(stack, key, monitor["id"], 2)
    with watched_page(chromium_browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key, next_path=f"/monitors/{monitor['id']}")
        wait_header_status(page, "up", timeout=30_000)
        with page.expect_navigation():
            page.get_by_role("button", name="Pause").click()
        assert header_status(page) == "paused"
        assert gateway_api(stack, key, "GET", f"/monitors/{monitor['id']}").json()["enabled"] is False
        assert page.get_by_role("button", name="Run now").is_enabled()
        with page.expect_navigation():
            page.get_by_role("button", name="Resume").click()
        assert header_status(page) == "up"
        assert gateway_api(stack, key, "GET", f"/monitors/{monitor['id']}").json()["enabled"] is True
        assert page.get_by_role("button", name="Pause").is_visible()

        dialogs = []
        page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        page.get_by_role("button", name="Delete").click()
        page.wait_for_url(f"{stack.gateway_url}{BASE}/")
        assert "Pausable" in dialogs[0] and "cannot be undone" in dialogs[0]
        assert gateway_api(stack, key, "GET", f"/monitors/{monitor['id']}").status_code == 404
        watched.assert_no_console_errors()


@browser_test
def test_the_alert_history_shows_a_webhooks_deliveries(
    stack, detail_project, chromium_browser, http_target, webhook_receiver
):
    from tests.dashboard_browser import sign_in, watched_page
    from tests.servers import wait_until

    _, key = detail_project
    provider = gateway_api(
        stack,
        key,
        "POST",
        "/notification-providers",
        json={"name": "Loopback hook", "type": "webhook", "config": {"url": webhook_receiver.url}},
    )
    assert provider.status_code == 201, provider.text
    http_target.status = 500
    monitor = create_loopback_monitor(
        stack,
        key,
        "Alerting shop",
        http_target.url,
        alertConfig={
            "enabled": True,
            "notificationProviders": [provider.json()["id"]],
            "failureThreshold": 1,
        },
    )
    webhook_receiver.wait_for_requests(1, timeout=60)
    wait_until(
        lambda: (
            gateway_api(stack, key, "GET", f"/monitors/{monitor['id']}/alerts").json()["data"]
            and gateway_api(stack, key, "GET", f"/monitors/{monitor['id']}/alerts").json()["data"][0][
                "status"
            ]
            == "sent"
        ),
        timeout=60,
        message="the alert recorded as sent",
    )
    with watched_page(chromium_browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key, next_path=f"/monitors/{monitor['id']}")
        row = page.locator('[data-section="alerts"] tr[data-alert-id]').first
        row.wait_for()
        assert "Loopback hook" in row.inner_text() and "webhook" in row.inner_text()
        assert row.locator("[data-delivery]").get_attribute("data-delivery") == "sent"
        assert "failure" in row.inner_text()
        assert header_status(page) == "down"
        watched.assert_no_console_errors()


@browser_test
def test_the_range_switcher_by_keyboard(stack, detail_project, chromium_browser, http_target):
    from tests.dashboard_browser import sign_in, watched_page

    _, key = detail_project
    monitor = create_loopback_monitor(stack, key, "Keyboard", http_target.url)
    wait_for_results(stack, key, monitor["id"], 2)
    with watched_page(chromium_browser) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key, next_path=f"/monitors/{monitor['id']}")
        page.get_by_role("heading", name="Keyboard").wait_for()
        for _ in range(80):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.dataset.range") == "24h":
                break
        else:
            raise AssertionError("Tab never reached the range switcher")
        assert page.evaluate("document.activeElement.getAttribute('aria-current')") == "true"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.dataset.range") == "7d"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "range=7d" in page.url
        assert page.locator('[data-chart="response-time"]').get_attribute("data-range") == "7d"
        assert page.locator("[data-range-switcher] [aria-current]").inner_text() == "7 d"
        assert page.locator('[data-chart="response-time"] circle.point').count() > 0
        # every control of the page has a name a screen reader can read
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll('main a, main button, main input:not([type=hidden]), main select')]
                 .filter(e => !(e.innerText || '').trim() && !e.getAttribute('aria-label') && !e.labels?.length)
                 .map(e => e.outerHTML)"""
        )
        assert unnamed == []
        watched.assert_no_console_errors()


@browser_test
@pytest.mark.parametrize(
    "width, dark", [("desktop", False), ("desktop", True), ("phone", False), ("phone", True)]
)
def test_screenshots_of_a_full_page(stack, detail_project, chromium_browser, infra, width, dark):
    from tests.dashboard_browser import DESKTOP, PHONE, screenshot, sign_in, watched_page

    project_id, key = detail_project
    if not hasattr(test_screenshots_of_a_full_page, "monitor"):
        test_screenshots_of_a_full_page.monitor = seed_showcase(infra, project_id)
    monitor_id = test_screenshots_of_a_full_page.monitor
    viewport = DESKTOP if width == "desktop" else PHONE
    with watched_page(chromium_browser, viewport=viewport, dark=dark) as watched:
        page = watched.page
        sign_in(page, stack.gateway_url, key, next_path=f"/monitors/{monitor_id}")
        page.get_by_role("heading", name="Shop checkout").wait_for()
        assert page.locator('[data-chart="response-time"] circle.point').count() > 0
        assert page.locator('[data-chart="phases"] svg').count() == 3
        assert page.locator('[data-chart="daily-uptime"] .day.bad').count() >= 1
        assert page.locator("[data-incident]").count() == 2
        assert page.locator("[data-incident][data-ongoing]").count() == 0
        assert page.locator('[data-certificate="valid"]').count() == 1
        assert page.locator("[data-alert-id]").count() == 3
        widest = page.evaluate("document.documentElement.scrollWidth")
        assert widest <= viewport["width"], f"the page scrolls sideways ({widest} px)"
        name = f"detail-{width}-{'dark' if dark else 'light'}"
        whole = screenshot(page, name)
        height = page.evaluate("document.documentElement.scrollHeight")
        for part, top in enumerate(range(0, height, 1400)):  # a long phone page, in pieces one can read
            if width == "phone":
                page.screenshot(
                    path=str(whole.with_name(f"{name}-{part + 1}.png")),
                    full_page=True,
                    clip={"x": 0, "y": top, "width": viewport["width"], "height": min(1400, height - top)},
                )
        page.locator('[data-chart="daily-uptime"] .day.bad').first.focus()  # a day's tooltip, by keyboard
        assert page.locator('[data-chart="daily-uptime"] .day.bad .tip').first.is_visible()
        page.locator('[data-section="uptime"]').screenshot(path=str(whole.with_name(f"{name}-tip.png")))
        watched.assert_no_console_errors()


@browser_test
def test_the_results_filter_in_place_by_location_and_by_the_browsers_own_day(
    stack, detail_project, chromium_browser, infra
):
    from tests.dashboard_browser import DESKTOP, WatchedPage, sign_in

    project_id, key = detail_project
    monitor_id = add_monitor(infra, project_id, name="Filtered", target="http://shop.example.net/")
    add_result(
        infra, monitor_id, "eu-central", datetime(2026, 3, 1, 23, 30, tzinfo=UTC), 42
    )  # 2 March in Berlin
    add_result(infra, monitor_id, "us-east", datetime(2026, 3, 1, 12, 0, tzinfo=UTC), 55)
    context = chromium_browser.new_context(viewport=DESKTOP, timezone_id="Europe/Berlin", locale="en-GB")
    try:
        watched = WatchedPage(context)
        page = watched.page
        sign_in(page, stack.gateway_url, key, next_path=f"/monitors/{monitor_id}")
        page.get_by_role("heading", name="Filtered").wait_for()
        page.evaluate("window.__sameDocument = true")
        rows = page.locator("[data-results] tr[data-result-id]")
        assert rows.count() == 2
        assert (
            "2 Mar 2026, 00:30:00" in rows.first.locator("time").inner_text()
        )  # shown in the browser's zone

        page.locator("#results-location").select_option("us-east")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-results] tr[data-result-id]').length === 1"
        )
        assert "55 ms" in rows.first.inner_text()
        assert "location=us-east" in page.url

        page.locator("#results-location").select_option("")
        page.locator("#results-date").fill("2026-03-02")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-results] tr[data-result-id]')].map(r => r.dataset.location)"
            ".join() === 'eu-central'"
        )
        assert "42 ms" in rows.first.inner_text()
        assert page.locator("[data-timezone-offset]").input_value() == "-60"  # Berlin in March: UTC+1
        assert "date=2026-03-02" in page.url and "timezoneOffset=-60" in page.url
        page.locator("#results-date").fill("2026-03-01")
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-results] tr[data-result-id]')].map(r => r.dataset.location)"
            ".join() === 'us-east'"
        )
        assert page.evaluate("window.__sameDocument") is True  # the table alone was reloaded
        page.reload()  # the address bar kept the filters
        assert page.locator("[data-results] tr[data-result-id]").count() == 1
        assert page.locator("#results-date").input_value() == "2026-03-01"
        watched.assert_no_console_errors()
    finally:
        context.close()
