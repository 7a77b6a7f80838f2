"""Incidents on status pages (issue 18): Markdown rendered inert, the automatic-draft decision as a table, the
incidents API (timeline, publish, validation, scoping), and drafts opened by the real aggregate path."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from shared.pipeline.aggregate import finalize_runs, sweep_deadlines
from shared.rules.markdown import escape_markdown, render_markdown
from shared.rules.status_drafts import MonitorChange, OpenDraft, PageFacts, impact_for, plan_drafts
from tests.api_client import ApiClient
from tests.factories import make_project, record_run

# --- Markdown -----------------------------------------------------------------------------------------------

SAFE_TAGS = {
    "p", "a", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "br", "s", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
SAFE_ATTRIBUTES = {"href", "rel", "title", "style", "start"}  # style: table cell alignment


class _Markup(HTMLParser):
    """Every element and attribute in a fragment, as a browser's tokenizer would see them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def inert(html: str) -> bool:
    """Only formatting elements, no event handler, and links only to the web or a mail address."""
    for tag, attributes in _Markup(html).tags:
        if tag not in SAFE_TAGS or not set(attributes) <= SAFE_ATTRIBUTES:
            return False
        href = attributes.get("href") or ""
        if ":" in href.split("/")[0] and not href.lower().startswith(("http:", "https:", "mailto:")):
            return False
    return True


@pytest.mark.parametrize(
    ("source", "shown_as_text"),
    [
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
        ("[x](JavaScript:alert(1))", "[x](JavaScript:alert(1))"),
        ("[x](java&#115;cript:alert(1))", "[x](javascript:alert(1))"),
        ("<javascript:alert(1)>", "<javascript:alert(1)>"),
        ("[x](vbscript:msgbox(1))", "[x](vbscript:msgbox(1))"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "[x](data:text/html;base64,PHNjcmlwdD4=)"),
        ("[x](file:///etc/passwd)", "[x](file:///etc/passwd)"),
        ("[x][r]\n\n[r]: javascript:alert(1)", "[r]: javascript:alert(1)"),
        ('<div onclick="alert(1)">\nhi\n</div>', '<div onclick="alert(1)">'),
        ("<iframe src=https://evil.example></iframe>", "<iframe src=https://evil.example></iframe>"),
        ("<a href='javascript:alert(1)'>a</a>", "<a href='javascript:alert(1)'>a</a>"),
        ("<svg><script>alert(1)</script></svg>", "<svg><script>alert(1)</script></svg>"),
        ("<!-- x --><style>body{}</style>", "<style>body{}</style>"),
        ('[x](https://a.example "t\\" onmouseover=\\"alert(1)")', "x"),
        ("`<b onclick=x>`", "<b onclick=x>"),
    ],
)
def test_hostile_markdown_comes_out_inert_and_shown_as_text(source, shown_as_text):
    html = render_markdown(source)
    assert inert(html), html
    text = "".join(_Text(html).parts)
    assert shown_as_text in text, html


class _Text(HTMLParser):
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.feed(html)

    def handle_data(self, data):
        self.parts.append(data)


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("**Checkout** is down", "<p><strong>Checkout</strong> is down</p>\n"),
        (
            "[status](https://status.example.com/)",
            '<p><a href="https://status.example.com/" rel="nofollow ugc noopener noreferrer">status</a></p>\n',
        ),
        ("- eu-central\n- us-east", "<ul>\n<li>eu-central</li>\n<li>us-east</li>\n</ul>\n"),
        ("~~fixed~~", "<p><s>fixed</s></p>\n"),
        ("", ""),
    ],
)
def test_ordinary_markdown_renders_as_expected(source, html):
    assert render_markdown(source) == html


def test_an_image_is_never_loaded_from_elsewhere():
    html = render_markdown("![logo](https://tracker.example/pixel.png)")
    assert "<img" not in html and inert(html)


def test_a_name_escaped_for_markdown_reads_as_written():
    name = "*Shop* <b>[api](javascript:x)</b> _1_"
    assert "".join(_Text(render_markdown(escape_markdown(name))).parts) == name + "\n"


# --- the automatic-draft decision -----------------------------------------------------------------------------

M1, M2, M3, M4 = (uuid.UUID(int=n) for n in range(1, 5))
PAGE, PROJECT, DRAFT = uuid.UUID(int=100), uuid.UUID(int=200), uuid.UUID(int=300)
RUN = uuid.UUID(int=400)
NAMES = {M1: "Web", M2: "API", M3: "DB", M4: "Elsewhere"}


def down(monitor, *where, since="up"):
    return MonitorChange(monitor, NAMES[monitor], RUN, since, "down", tuple(where))


def recovered(monitor, to="up"):
    return MonitorChange(monitor, NAMES[monitor], RUN, "down", to)


def page(down_now=(), draft=None):
    return PageFacts(PAGE, PROJECT, frozenset({M1, M2, M3}), frozenset(down_now), draft)


def a_draft(*monitors, impact="minor"):
    return OpenDraft(DRAFT, frozenset(monitors), impact)


@pytest.mark.parametrize(
    ("changes", "facts", "expected"),
    [
        # (changes, the page after the batch, (incident, title, impact, monitors added, notes)) or None
        (
            [down(M1, "eu-central")],
            page({M1}),
            (None, "Web is down", "minor", (M1,), ("**Web** is down (failing in eu-central).",)),
        ),
        (
            [down(M1, "eu-central", "us-east"), down(M2)],
            page({M1, M2}),
            (
                None,
                "Web and API are down",
                "major",
                (M1, M2),
                ("**Web** is down (failing in eu-central, us-east).", "**API** is down too."),
            ),
        ),
        (
            [down(M1), down(M2), down(M3)],
            page({M1, M2, M3}),
            (None, "Web and 2 other monitors are down", "critical", (M1, M2, M3), None),
        ),
        # a draft already open: extended, its impact only ever raised
        (
            [down(M2, "us-east")],
            page({M1, M2}, a_draft(M1)),
            (DRAFT, "API is down", "major", (M2,), ("**API** is down too (failing in us-east).",)),
        ),
        (
            [down(M2)],
            page({M2}, a_draft(M1, impact="critical")),
            (DRAFT, "API is down", "critical", (M2,), None),
        ),
        # down again after recovering: no monitor to add, one more entry
        (
            [down(M1, since="degraded")],
            page({M1}, a_draft(M1)),
            (DRAFT, "Web is down", "minor", (), ("**Web** is down again.",)),
        ),
        # recoveries note the draft that names the monitor, never resolve it, never lower its impact
        (
            [recovered(M1)],
            page((), a_draft(M1, impact="major")),
            (DRAFT, "", "major", (), ("**Web** recovered.",)),
        ),
        (
            [recovered(M1, to="degraded")],
            page((), a_draft(M1)),
            (DRAFT, "", "minor", (), ("**Web** recovered.",)),
        ),
        ([recovered(M2)], page((), a_draft(M1)), None),
        ([recovered(M1)], page(()), None),
        # down and back within one batch: opened (at least minor), then noted
        (
            [down(M1), recovered(M1)],
            page(()),
            (None, "Web is down", "minor", (M1,), ("**Web** is down.", "**Web** recovered.")),
        ),
        # a monitor on no page of this one changes nothing here
        ([down(M4)], page(()), None),
    ],
)
def test_which_drafts_a_batch_opens_or_extends(changes, facts, expected):
    plans = plan_drafts(changes, {PAGE: facts})
    if expected is None:
        assert plans == []
        return
    (plan,) = plans
    incident, title, impact, added, notes = expected
    assert (plan.incident_id, plan.title, plan.impact, plan.add_monitor_ids) == (
        incident,
        title,
        impact,
        added,
    )
    if notes is not None:
        assert plan.notes == notes
    assert plan.page_id == PAGE and plan.project_id == PROJECT
    assert plan.opened_by_run_id == (RUN if incident is None else None)


def test_a_plan_of_recoveries_alone_leaves_the_draft_row_as_it_is():
    (plan,) = plan_drafts([recovered(M1)], {PAGE: page((), a_draft(M1))})
    assert not plan.writes_draft
    (plan,) = plan_drafts([down(M1, since="degraded")], {PAGE: page({M1}, a_draft(M1, impact="critical"))})
    assert not plan.writes_draft, "down again, nothing to add or raise: a timeline entry only"


def test_a_monitor_on_two_pages_gets_a_plan_on_each_in_page_order():
    other = uuid.UUID(int=99)
    pages = {
        PAGE: page({M1}),
        other: PageFacts(other, PROJECT, frozenset({M1}), frozenset({M1})),
    }
    plans = plan_drafts([down(M1)], pages)
    assert [(p.page_id, p.impact) for p in plans] == [(other, "critical"), (PAGE, "minor")]


def test_a_long_name_makes_a_title_that_fits_the_api():
    (plan,) = plan_drafts([MonitorChange(M1, "x" * 300, RUN, "up", "down")], {PAGE: page({M1})})
    assert len(plan.title) == 200 and plan.title.endswith("…")


@pytest.mark.parametrize(
    ("down_count", "total", "impact"),
    [(0, 3, "none"), (1, 3, "minor"), (1, 2, "major"), (2, 3, "major"), (3, 3, "critical"), (1, 1, "critical"),
     (1, 10, "minor"), (5, 10, "major"), (0, 0, "none")],
)  # fmt: skip
def test_impact_follows_how_many_of_the_pages_monitors_are_down(down_count, total, impact):
    assert impact_for(down_count, total) == impact


# --- the incidents API -----------------------------------------------------------------------------------------


@pytest.fixture
def site(clean, aio):
    """Project A with three monitors, a page showing two of them, and project B with a key of its own."""
    a = ApiClient(aio, make_project(aio, "A"))
    b = ApiClient(aio, make_project(aio, "B"))
    monitors = []
    for name in ("Web", "API", "Elsewhere"):
        created = a.post(
            "/monitors",
            json={
                "name": name,
                "type": "http",
                "target": "https://x.example.net/",
                "enabled": False,
                "locationConfig": {"strategy": "all"},
            },
        )
        assert created.status_code == 201, created.text
        monitors.append(created.json()["id"])
    page = a.post(
        "/status-pages",
        json={"slug": "shop", "title": "Shop", "groups": [{"name": "All", "monitorIds": monitors[:2]}]},
    )
    assert page.status_code == 201, page.text
    return a, b, page.json()["id"], monitors


def test_an_incident_opens_public_with_its_message_rendered_and_grows_a_timeline(site, clean):
    a, _, page_id, (web, api, _) = site
    created = a.post(
        "/incidents",
        json={
            "statusPageId": page_id,
            "title": "Checkout errors",
            "status": "investigating",
            "message": "We see **errors** <script>alert(1)</script>",
            "monitorIds": [web],
            "impact": "major",
        },
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert {
        k: incident[k] for k in ("title", "status", "impact", "isDraft", "monitorIds", "statusPageId")
    } == {
        "title": "Checkout errors",
        "status": "investigating",
        "impact": "major",
        "isDraft": False,
        "monitorIds": [web],
        "statusPageId": page_id,
    }
    assert incident["publishedAt"] is not None and incident["resolvedAt"] is None
    assert incident["message"] == "We see **errors** <script>alert(1)</script>"
    assert (
        incident["messageHtml"]
        == "<p>We see <strong>errors</strong> &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )
    assert [(u["status"], u["message"]) for u in incident["updates"]] == [
        ("investigating", incident["message"])
    ]

    update = a.post(
        f"/incidents/{incident['id']}/updates", json={"status": "identified", "message": "A bad deploy"}
    )
    assert update.status_code == 201, update.text
    assert update.json()["status"] == "identified" and update.json()["message"] == "A bad deploy"
    resolved = a.post(
        f"/incidents/{incident['id']}/updates", json={"status": "resolved", "message": "Rolled back"}
    )
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolvedAt"] is not None
    timeline = a.get(f"/incidents/{incident['id']}").json()["updates"]
    assert [(u["status"], u["messageHtml"]) for u in timeline] == [
        ("investigating", incident["messageHtml"]),
        ("identified", "<p>A bad deploy</p>\n"),
        ("resolved", "<p>Rolled back</p>\n"),
    ]
    reopened = a.post(
        f"/incidents/{incident['id']}/updates", json={"status": "monitoring", "message": "Again"}
    )
    assert reopened.json()["resolvedAt"] is None

    patched = a.request(
        "PATCH",
        f"/incidents/{incident['id']}",
        json={"title": "Checkout down", "impact": "critical", "monitorIds": [web, api]},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["title"], patched.json()["impact"]) == ("Checkout down", "critical")
    assert sorted(patched.json()["monitorIds"]) == sorted([web, api])
    assert len(patched.json()["updates"]) == 4, "a patch is not a timeline entry"

    published = a.post(f"/incidents/{incident['id']}/publish")
    assert published.status_code == 200 and published.json()["publishedAt"] == incident["publishedAt"]
    assert a.request("DELETE", f"/incidents/{incident['id']}").status_code == 204
    assert a.get(f"/incidents/{incident['id']}").status_code == 404
    assert clean.sql("select count(*) from incident_updates") == [(0,)]
    actions = [e["action"] for e in a.get("/audit-log", params={"limit": 100}).json()["data"]]
    assert [x for x in actions if x.startswith("incident.")] == [
        "incident.delete",
        "incident.change",
        "incident.update",
        "incident.update",
        "incident.update",
        "incident.create",
    ]


def test_an_incident_opened_resolved_has_its_resolution_time(site):
    a, _, page_id, _ = site
    incident = a.post(
        "/incidents", json={"statusPageId": page_id, "title": "Done", "status": "resolved"}
    ).json()
    assert incident["resolvedAt"] is not None and incident["message"] == "" and incident["messageHtml"] == ""


def test_the_page_and_the_monitors_must_be_the_callers_and_on_the_page(site, clean):
    a, b, page_id, (web, api, elsewhere) = site
    foreign_page = b.post("/incidents", json={"statusPageId": page_id, "title": "x"})
    assert foreign_page.status_code == 400 and foreign_page.json()["error"]["field"] == "statusPageId"
    off_page = a.post(
        "/incidents", json={"statusPageId": page_id, "title": "x", "monitorIds": [web, elsewhere]}
    )
    assert off_page.status_code == 400, off_page.text
    assert off_page.json()["error"]["field"] == "monitorIds.1"
    b_page = b.post("/status-pages", json={"slug": "b-shop", "title": "B"}).json()
    foreign_monitor = b.post(
        "/incidents", json={"statusPageId": b_page["id"], "title": "x", "monitorIds": [web]}
    )
    assert foreign_monitor.status_code == 400 and foreign_monitor.json()["error"]["field"] == "monitorIds.0"
    for body, field in (
        ({"statusPageId": page_id, "title": "x", "status": "fixed"}, "status"),
        ({"statusPageId": page_id, "title": "x", "impact": "huge"}, "impact"),
        ({"statusPageId": page_id, "title": ""}, "title"),
        ({"title": "x"}, "statusPageId"),
    ):
        response = a.post("/incidents", json=body)
        assert response.status_code == 400 and response.json()["error"]["field"] == field, response.text
    assert clean.sql("select count(*) from incidents") == [(0,)]
    incident = a.post("/incidents", json={"statusPageId": page_id, "title": "x"}).json()
    patch = a.request("PATCH", f"/incidents/{incident['id']}", json={"monitorIds": [elsewhere]})
    assert patch.status_code == 400 and patch.json()["error"]["field"] == "monitorIds.0"
    empty = a.post(f"/incidents/{incident['id']}/updates", json={"status": "identified", "message": ""})
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "message"


def test_the_list_filters_and_pages_newest_first(site):
    a, b, page_id, _ = site
    other = a.post("/status-pages", json={"slug": "other", "title": "Other"}).json()["id"]
    for title, page, status in (
        ("one", page_id, "resolved"),
        ("two", other, "investigating"),
        ("three", page_id, "investigating"),
    ):
        assert (
            a.post("/incidents", json={"statusPageId": page, "title": title, "status": status}).status_code
            == 201
        )
    listed = a.get("/incidents", params={"limit": 2}).json()
    assert [i["title"] for i in listed["data"]] == ["three", "two"]
    assert listed["pagination"] == {
        "page": 1, "limit": 2, "total": 3, "totalPages": 2, "hasNextPage": True, "hasPrevPage": False,
    }  # fmt: skip
    assert "updates" not in listed["data"][0]
    by_page = a.get("/incidents", params={"statusPageId": page_id}).json()["data"]
    assert [i["title"] for i in by_page] == ["three", "one"]
    assert [i["title"] for i in a.get("/incidents", params={"status": "resolved"}).json()["data"]] == ["one"]
    assert a.get("/incidents", params={"draft": "true"}).json()["data"] == []
    assert len(a.get("/incidents", params={"draft": "false"}).json()["data"]) == 3
    bad = a.get("/incidents", params={"status": "gone"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    assert b.get("/incidents").json()["pagination"]["total"] == 0
    assert b.get("/incidents", params={"statusPageId": page_id}).json()["data"] == []


def test_another_project_can_neither_see_nor_change_an_incident(site, clean):
    a, b, page_id, _ = site
    incident = a.post("/incidents", json={"statusPageId": page_id, "title": "x", "message": "m"}).json()
    audited = clean.sql("select count(*) from audit_log")
    for method, path, body in (
        ("GET", "", None),
        ("PATCH", "", {"title": "hijack"}),
        ("POST", "/updates", {"status": "resolved", "message": "hijack"}),
        ("POST", "/publish", None),
        ("DELETE", "", None),
    ):
        response = b.request(method, f"/incidents/{incident['id']}{path}", json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert clean.sql("select count(*) from audit_log") == audited
    assert a.get(f"/incidents/{incident['id']}").json() == incident


# --- automatic drafts through the real aggregate path -----------------------------------------------------------

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def finalize(aio, clean, monitor_id, minute, statuses):
    run_id = record_run(clean, monitor_id, T0 + timedelta(minutes=minute), statuses)
    assert aio.run(finalize_runs([run_id])) == 1
    return run_id


def drafts_of(a, page_id):
    listed = a.get("/incidents", params={"statusPageId": page_id, "draft": "true"}).json()["data"]
    return [a.get(f"/incidents/{incident['id']}").json() for incident in listed]


def written(clean):
    return clean.sql(
        """select (select count(*) from incidents), (select count(*) from incident_monitors),
                  (select count(*) from incident_updates)"""
    )


def test_a_monitor_going_down_opens_a_draft_that_a_second_outage_extends_and_one_call_publishes(
    site, aio, clean
):
    a, _, page_id, (web, api, elsewhere) = site
    solo = a.post(
        "/status-pages",
        json={"slug": "web-only", "title": "Web", "groups": [{"name": "W", "monitorIds": [web]}]},
    ).json()["id"]

    run = finalize(aio, clean, web, 0, {"us-east": "down", "eu-central": "up", "asia-pacific": "timeout"})
    (draft,) = drafts_of(a, page_id)
    assert {k: draft[k] for k in ("title", "status", "impact", "isDraft", "monitorIds", "openedByRunId")} == {
        "title": "Web is down",
        "status": "investigating",
        "impact": "major",  # one of the page's two monitors: half
        "isDraft": True,
        "monitorIds": [web],
        "openedByRunId": str(run),
    }
    assert draft["publishedAt"] is None
    assert draft["message"] == "**Web** is down (failing in asia-pacific, us-east)."
    assert draft["messageHtml"] == "<p><strong>Web</strong> is down (failing in asia-pacific, us-east).</p>\n"
    (solo_draft,) = drafts_of(a, solo)
    assert solo_draft["impact"] == "critical", "the only monitor of its page"

    # a redelivered finalize, and a deadline sweep over the same run, write nothing twice
    before = written(clean)
    assert aio.run(finalize_runs([run])) == 0
    assert aio.run(sweep_deadlines(now=T0 + timedelta(hours=1))) == 0
    assert written(clean) == before

    finalize(aio, clean, api, 1, {"us-east": "down", "eu-central": "down", "asia-pacific": "down"})
    (extended,) = drafts_of(a, page_id)
    assert extended["id"] == draft["id"], "one open draft per page"
    assert sorted(extended["monitorIds"]) == sorted([web, api])
    assert extended["impact"] == "critical" and extended["title"] == "Web is down"
    assert [u["message"] for u in extended["updates"]] == [
        draft["message"],
        "**API** is down too (failing in asia-pacific, eu-central, us-east).",
    ]
    assert len(drafts_of(a, solo)[0]["updates"]) == 1, "API is not on the solo page"

    # a monitor on no page opens nothing
    before = written(clean)
    finalize(aio, clean, elsewhere, 2, {"us-east": "down"})
    assert written(clean) == before

    # a recovery is noted, but resolves nothing: an operator does that
    finalize(aio, clean, web, 3, {"us-east": "up", "eu-central": "up", "asia-pacific": "up"})
    (noted,) = drafts_of(a, page_id)
    assert noted["updates"][-1]["message"] == "**Web** recovered."
    assert (noted["status"], noted["resolvedAt"], noted["impact"]) == ("investigating", None, "critical")
    assert drafts_of(a, solo)[0]["updates"][-1]["message"] == "**Web** recovered."

    published = a.post(f"/incidents/{draft['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["isDraft"] is False and published.json()["publishedAt"] is not None
    assert "incident.publish" in [e["action"] for e in a.get("/audit-log").json()["data"]]
    assert drafts_of(a, page_id) == []

    # once published, the page's next outage opens a new draft
    finalize(aio, clean, web, 4, {"us-east": "down", "eu-central": "up", "asia-pacific": "up"})
    (fresh,) = drafts_of(a, page_id)
    assert fresh["id"] != draft["id"] and fresh["monitorIds"] == [web]
    assert fresh["impact"] == "critical", "both of the page's monitors are down now"


def test_two_monitors_down_in_one_batch_open_one_draft(site, aio, clean):
    a, _, page_id, (web, api, _) = site
    runs = [
        record_run(clean, web, T0, {"us-east": "down"}),
        record_run(clean, api, T0, {"eu-central": "error"}),
    ]
    assert aio.run(finalize_runs(runs)) == 2
    (draft,) = drafts_of(a, page_id)
    assert draft["title"] in ("Web and API are down", "API and Web are down")
    assert sorted(draft["monitorIds"]) == sorted([web, api]) and draft["impact"] == "critical"
    assert len(draft["updates"]) == 2


def test_a_down_and_up_in_one_batch_still_leaves_a_draft_to_look_at(site, aio, clean):
    a, _, page_id, (web, _, _) = site
    runs = [
        record_run(clean, web, T0, {"us-east": "down"}),
        record_run(clean, web, T0 + timedelta(minutes=1), {"us-east": "up"}),
    ]
    assert aio.run(finalize_runs(runs)) == 2
    (draft,) = drafts_of(a, page_id)
    assert [u["message"] for u in draft["updates"]] == [
        "**Web** is down (failing in us-east).",
        "**Web** recovered.",
    ]
    assert draft["impact"] == "major", "as if down when the batch ended: half the page"


def test_a_draft_an_operator_moved_on_keeps_its_status_in_new_entries(site, aio, clean):
    a, _, page_id, (web, api, _) = site
    finalize(aio, clean, web, 0, {"us-east": "down"})
    (draft,) = drafts_of(a, page_id)
    a.post(f"/incidents/{draft['id']}/updates", json={"status": "identified", "message": "The database"})
    finalize(aio, clean, api, 1, {"us-east": "down"})
    (draft,) = drafts_of(a, page_id)
    assert [u["status"] for u in draft["updates"]] == ["investigating", "identified", "identified"]


def test_a_resolved_draft_frees_the_page_for_the_next_one(site, aio, clean):
    a, _, page_id, (web, api, _) = site
    finalize(aio, clean, web, 0, {"us-east": "down"})
    (first,) = drafts_of(a, page_id)
    resolved = a.post(
        f"/incidents/{first['id']}/updates", json={"status": "resolved", "message": "False alarm"}
    )
    assert resolved.json()["resolvedAt"] is not None
    finalize(aio, clean, api, 1, {"us-east": "down"})
    drafts = drafts_of(a, page_id)
    assert [d["title"] for d in drafts] == ["API is down", "Web is down"]
    reopened = a.post(
        f"/incidents/{first['id']}/updates", json={"status": "investigating", "message": "Not false"}
    )
    assert reopened.status_code == 409, reopened.text
    assert reopened.json()["error"]["field"] == "status"


def test_two_batches_at_once_on_one_page_end_with_one_draft_naming_both(site, aio, clean):
    a, _, page_id, (web, api, _) = site
    first = record_run(clean, web, T0, {"us-east": "down"})
    second = record_run(clean, api, T0, {"us-east": "down"})

    async def both():
        return await asyncio.gather(finalize_runs([first]), finalize_runs([second]))

    assert aio.run(both()) == [1, 1]
    (draft,) = drafts_of(a, page_id)
    assert sorted(draft["monitorIds"]) == sorted([web, api]) and draft["impact"] == "critical"
    assert len(draft["updates"]) == 2
