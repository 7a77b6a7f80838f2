"""Status pages through the API (issue 18): their groups of the caller's monitors, slugs unique across projects,
custom domains, validation naming the field, project scoping and audit. Against real Postgres."""

from __future__ import annotations

import uuid

import pytest

from tests.api_client import ApiClient
from tests.factories import make_project


@pytest.fixture
def projects(clean, aio):
    """Projects A and B, each with an API client and two monitors of its own."""
    clients = {name: ApiClient(aio, make_project(aio, name)) for name in ("A", "B")}
    monitors = {}
    for name, client in clients.items():
        monitors[name] = []
        for label in ("web", "api"):
            created = client.post(
                "/monitors",
                json={
                    "name": f"{name}-{label}",
                    "type": "http",
                    "target": "https://x.example.net/",
                    "enabled": False,
                },
            )
            assert created.status_code == 201, created.text
            monitors[name].append(created.json()["id"])
    return clients, monitors


def a_page(slug: str = "shop", **fields) -> dict:
    return {"slug": slug, "title": "Shop status", **fields}


def test_a_page_is_created_read_listed_replaced_patched_and_deleted(projects, clean):
    clients, monitors = projects
    a = clients["A"]
    web, api = monitors["A"]
    created = a.post(
        "/status-pages",
        json=a_page(
            description="How the shop is doing",
            groups=[{"name": "Website", "monitorIds": [web]}, {"name": "API", "monitorIds": [api]}],
            customDomain="Status.Shop.Example.COM.",
            showResponseTimes=True,
        ),
    )
    assert created.status_code == 201, created.text
    page = created.json()
    assert {key: page[key] for key in ("slug", "title", "description", "customDomain")} == {
        "slug": "shop",
        "title": "Shop status",
        "description": "How the shop is doing",
        "customDomain": "status.shop.example.com",
    }
    assert (page["showResponseTimes"], page["showUptime"], page["published"]) == (True, True, True)
    assert page["groups"] == [{"name": "Website", "monitorIds": [web]}, {"name": "API", "monitorIds": [api]}]
    assert a.get(f"/status-pages/{page['id']}").json() == page
    # stored for the status function as the migration lays it out: group and monitor positions from 0
    assert clean.sql(
        """select group_position, group_name, position, monitor_id::text from status_page_monitors
           where status_page_id = %s order by group_position, position""",
        (page["id"],),
    ) == [(0, "Website", 0, web), (1, "API", 0, api)]

    replaced = a.request(
        "PUT",
        f"/status-pages/{page['id']}",
        json=a_page("shop-2", groups=[{"name": "All", "monitorIds": [api, web]}], published=False),
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["groups"] == [{"name": "All", "monitorIds": [api, web]}]
    assert replaced.json()["customDomain"] is None and replaced.json()["published"] is False

    patched = a.request("PATCH", f"/status-pages/{page['id']}", json={"title": "Renamed"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "Renamed"
    assert patched.json()["slug"] == "shop-2" and patched.json()["groups"] == replaced.json()["groups"]
    domain = a.request("PATCH", f"/status-pages/{page['id']}", json={"customDomain": "status.example.org"})
    assert domain.json()["customDomain"] == "status.example.org"
    removed = a.request("PATCH", f"/status-pages/{page['id']}", json={"customDomain": None})
    assert removed.json()["customDomain"] is None

    assert a.request("DELETE", f"/status-pages/{page['id']}").status_code == 204
    assert a.get(f"/status-pages/{page['id']}").status_code == 404
    assert clean.sql("select count(*) from status_page_monitors") == [(0,)]
    actions = [entry["action"] for entry in a.get("/audit-log", params={"limit": 100}).json()["data"]]
    assert [action for action in actions if action.startswith("status_page.")] == [
        "status_page.delete",
        "status_page.update",
        "status_page.update",
        "status_page.update",
        "status_page.update",
        "status_page.create",
    ]


def test_the_list_is_paged_newest_first(projects):
    clients, _ = projects
    a = clients["A"]
    for slug in ("first", "second", "third"):
        assert a.post("/status-pages", json=a_page(slug)).status_code == 201
    listed = a.get("/status-pages", params={"limit": 2}).json()
    assert [page["slug"] for page in listed["data"]] == ["third", "second"]
    assert listed["pagination"]["total"] == 3 and listed["pagination"]["hasNextPage"] is True
    assert [
        page["slug"] for page in a.get("/status-pages", params={"page": 2, "limit": 2}).json()["data"]
    ] == ["first"]


def test_a_slug_is_unique_across_projects(projects, clean):
    clients, _ = projects
    assert clients["A"].post("/status-pages", json=a_page("shop")).status_code == 201
    taken = clients["B"].post("/status-pages", json=a_page("shop"))
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"] == {
        "code": "conflict",
        "message": "slug: a status page with slug 'shop' exists already (slugs are unique across projects)",
        "field": "slug",
    }
    assert clients["B"].post("/status-pages", json=a_page("shop-b")).status_code == 201
    renamed = clients["B"].request(
        "PATCH",
        f"/status-pages/{clients['B'].get('/status-pages').json()['data'][0]['id']}",
        json={"slug": "shop"},
    )
    assert renamed.status_code == 409 and renamed.json()["error"]["field"] == "slug"
    assert clean.sql("select slug from status_pages order by slug") == [("shop",), ("shop-b",)]


def test_a_custom_domain_is_unique_and_compared_lower_cased(projects):
    clients, _ = projects
    assert (
        clients["A"].post("/status-pages", json=a_page("a", customDomain="status.example.com")).status_code
        == 201
    )
    taken = clients["B"].post("/status-pages", json=a_page("b", customDomain="STATUS.example.com"))
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"]["field"] == "customDomain"


@pytest.mark.parametrize(
    "domain",
    [
        "https://status.example.com",
        "status.example.com:8443",
        "status.example.com/path",
        "localhost",
        "10.0.0.1",
        "-bad.example.com",
        "sta tus.example.com",
        "sta\ntus.example.com",
        "status.example.com\n.x",
        "a" * 64 + ".example.com",
        "",
    ],
)
def test_a_custom_domain_that_is_no_host_name_is_400_naming_it(projects, domain):
    clients, _ = projects
    response = clients["A"].post("/status-pages", json=a_page(customDomain=domain))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "customDomain"


@pytest.mark.parametrize(
    "slug",
    ["Shop", "-shop", "shop-", "sh_op", "shop page", "", "a" * 65, "api", "shop/../x", "ßhop", "shop\n"],
)
def test_a_slug_outside_the_migrations_format_is_400_naming_it(projects, clean, slug):
    clients, _ = projects
    response = clients["A"].post("/status-pages", json=a_page(slug))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "slug"
    assert clean.sql("select count(*) from status_pages") == [(0,)]


def test_the_longest_and_shortest_slugs_the_migration_allows_are_accepted(projects):
    clients, _ = projects
    for slug in ("a", "a" * 64, "0-9"):
        assert clients["A"].post("/status-pages", json=a_page(slug)).status_code == 201, slug


def test_another_projects_monitor_is_400_naming_its_place(projects, clean):
    clients, monitors = projects
    own, foreign = monitors["B"][0], monitors["A"][0]
    response = clients["B"].post(
        "/status-pages", json=a_page(groups=[{"name": "Web", "monitorIds": [own, foreign]}])
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "groups.0.monitorIds.1"
    assert foreign in response.json()["error"]["message"]
    unknown = clients["B"].post(
        "/status-pages",
        json=a_page(
            groups=[{"name": "Web", "monitorIds": [own]}, {"name": "X", "monitorIds": [str(uuid.uuid4())]}]
        ),
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "groups.1.monitorIds.0"
    assert clean.sql("select count(*) from status_pages") == [(0,)]


def test_a_monitor_appears_once_on_a_page_and_group_names_differ(projects):
    clients, monitors = projects
    web, api = monitors["A"]
    twice = clients["A"].post(
        "/status-pages",
        json=a_page(groups=[{"name": "Web", "monitorIds": [web, api]}, {"name": "API", "monitorIds": [api]}]),
    )
    assert twice.status_code == 400, twice.text
    assert twice.json()["error"] == {
        "code": "validation_error",
        "message": f"groups.1.monitorIds.0: monitor {api} is in group 0 already",
        "field": "groups.1.monitorIds.0",
    }
    same_group = clients["A"].post(
        "/status-pages", json=a_page(groups=[{"name": "Web", "monitorIds": [web, web]}])
    )
    assert same_group.status_code == 400 and same_group.json()["error"]["field"] == "groups.0.monitorIds.1"
    names = clients["A"].post(
        "/status-pages",
        json=a_page(groups=[{"name": "Web", "monitorIds": [web]}, {"name": "Web", "monitorIds": [api]}]),
    )
    assert names.status_code == 400 and names.json()["error"]["field"] == "groups.1.name"
    empty = clients["A"].post("/status-pages", json=a_page(groups=[{"name": "Web", "monitorIds": []}]))
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "groups.0.monitorIds"


def test_a_patch_may_not_null_a_required_field(projects):
    clients, _ = projects
    page = clients["A"].post("/status-pages", json=a_page()).json()
    response = clients["A"].request("PATCH", f"/status-pages/{page['id']}", json={"title": None})
    assert response.status_code == 400 and response.json()["error"]["field"] == "title"
    unknown = clients["A"].request("PATCH", f"/status-pages/{page['id']}", json={"colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "colour"


def test_another_project_can_neither_see_nor_change_a_page(projects, clean):
    clients, monitors = projects
    a, b = clients["A"], clients["B"]
    page = a.post("/status-pages", json=a_page(groups=[{"name": "Web", "monitorIds": monitors["A"]}])).json()
    audited = clean.sql("select count(*) from audit_log")
    assert b.get("/status-pages").json()["pagination"]["total"] == 0
    for method, body in (
        ("GET", None),
        ("PUT", a_page("hijack")),
        ("PATCH", {"title": "hijack"}),
        ("DELETE", None),
    ):
        response = b.request(method, f"/status-pages/{page['id']}", json=body)
        assert response.status_code == 404, (method, response.text)
    assert clean.sql("select count(*) from audit_log") == audited
    assert a.get(f"/status-pages/{page['id']}").json() == page


def test_a_deleted_monitor_leaves_every_page_it_was_on(projects):
    clients, monitors = projects
    web, api = monitors["A"]
    page = (
        clients["A"]
        .post("/status-pages", json=a_page(groups=[{"name": "Web", "monitorIds": [web, api]}]))
        .json()
    )
    assert clients["A"].request("DELETE", f"/monitors/{web}").status_code == 204
    assert clients["A"].get(f"/status-pages/{page['id']}").json()["groups"] == [
        {"name": "Web", "monitorIds": [api]}
    ]
