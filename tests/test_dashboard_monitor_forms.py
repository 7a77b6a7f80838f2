"""The monitor set-up forms (/monitors/new, /monitors/{id}/edit): rendered in process (every type's fields
labelled, an edit prefilled with its secrets blank, escaping), then driven in Chromium against the local stack
(create, validation next to its field, the Test button, edit, type switching, keyboard, screenshots)."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser

import httpx
import pytest

from shared.checks import CHECK_TYPES
from shared.dashboard.pages.monitor_forms import config_fields
from shared.security import mask
from tests.api_client import ApiClient, function_app
from tests.factories import make_project

BASE = "/function/dashboard"
SECRET_PASSWORD = "s3cret-pass-word"
SECRET_HEADER = "Bearer header-secret-42"


class InProcessBrowser:
    """A cookie-keeping client of the dashboard app in process, as a browser on http://127.0.0.1 sees it."""

    def __init__(self, aio, origin: str = "http://127.0.0.1:8080"):
        self.aio = aio
        self.origin = origin
        self.cookies = httpx.Cookies()

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def go():
            transport = httpx.ASGITransport(app=function_app("dashboard"))
            async with httpx.AsyncClient(
                transport=transport, base_url=self.origin, cookies=self.cookies, timeout=30
            ) as client:
                response = await client.request(method, path, **kwargs)
                self.cookies = httpx.Cookies(client.cookies)
                return response

        return self.aio.run(go())

    def sign_in(self, key: str) -> None:
        form = self.request("GET", f"{BASE}/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        reply = self.request("POST", f"{BASE}/login", data={"api_key": key, "csrf": token, "next": ""})
        assert reply.status_code == 303


class Elements(HTMLParser):
    """Every element's attributes, and the text of each <label for=...>."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.labels: dict[str, str] = {}
        self._label_for: str | None = None
        self._label_text: list[str] = []
        self._textarea: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {name: value if value is not None else "" for name, value in attrs}
        self.elements.append((tag, attributes))
        if tag == "label":
            self._label_for, self._label_text = attributes.get("for"), []
        if tag == "textarea":
            self._textarea = attributes
            attributes["text"] = ""

    def handle_endtag(self, tag):
        if tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._label_text).split())
            self._label_for = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._label_for:
            self._label_text.append(data)
        if self._textarea is not None:
            self._textarea["text"] += data

    def by_id(self, element_id: str) -> tuple[str, dict]:
        found = [(tag, attrs) for tag, attrs in self.elements if attrs.get("id") == element_id]
        assert len(found) == 1, f"{element_id}: {len(found)} elements"
        return found[0]

    def named(self, name: str) -> list[tuple[str, dict]]:
        return [(tag, attrs) for tag, attrs in self.elements if attrs.get("name") == name]


def field_id(check_type: str, key: str) -> str:
    return f"{check_type}--{key.replace('.', '-')}"


@pytest.fixture
def key(clean, aio) -> str:
    return make_project(aio, "forms")


@pytest.fixture
def browser(aio, key) -> InProcessBrowser:
    client = InProcessBrowser(aio)
    client.sign_in(key)
    return client


def create_monitor(aio, key: str, body: dict) -> dict:
    reply = ApiClient(aio, key).post("/monitors", json={"enabled": False, **body})
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_the_new_form_has_every_types_config_fields_each_labelled_with_its_error_slot(browser):
    page = browser.request("GET", f"{BASE}/monitors/new")
    assert page.status_code == 200, page.text
    html = Elements(page.text)
    for check_type in CHECK_TYPES:
        fields = config_fields(check_type)
        assert fields, check_type
        for field in fields:
            element_id = field_id(check_type, field.key)
            tag, attrs = html.by_id(element_id)
            assert attrs["name"] == field.name
            assert html.labels.get(element_id), f"{element_id} has no label"
            assert f'id="{element_id}-error" data-error-for="{field.name}"' in page.text
    # the kinds come from the models' schema: choices are selects, flags checkboxes, limits on numbers
    assert html.by_id("http_request--method")[0] == "select"
    assert html.by_id("http_request--enableSslCheck")[1]["type"] == "checkbox"
    timeout = html.by_id("ping_host--timeoutSeconds")[1]
    assert (timeout["type"], timeout["min"], timeout["max"]) == ("number", "1", "60")
    assert html.by_id("http_request--auth-password")[1]["type"] == "password"
    assert html.by_id("http_request--auth-token")[1]["type"] == "password"
    assert "website--auth-token" not in page.text  # website monitors take basic auth only
    # only the chosen type's fields are shown; the others are hidden, so the browser does not send them
    for _, attrs in html.elements:
        if "data-for-types" in attrs and attrs["data-for-types"] in CHECK_TYPES:
            assert ("hidden" in attrs) == (attrs["data-for-types"] != "http_request")
    for name in ("name", "type", "frequencyMinutes", "target", "tags", "locationConfig.locations"):
        assert f'data-error-for="{name}"' in page.text
    assert html.labels["synthetic-test"] == "Synthetic test to run"
    assert html.labels["monitor-frequency"] == "Check every (minutes)"


def test_the_new_form_offers_the_projects_locations_providers_and_synthetic_tests(aio, key, browser):
    api = ApiClient(aio, key)
    provider = api.post(
        "/notification-providers",
        json={"name": "On-call <hook>", "type": "webhook", "config": {"url": "https://hooks.example.com/x"}},
    )
    assert provider.status_code == 201, provider.text
    script = "async def run(page, context, variables):\n    await page.goto('https://example.com')\n"
    test = api.post("/synthetic-tests", json={"title": "Checkout journey", "script": script})
    assert test.status_code == 201, test.text
    page = browser.request("GET", f"{BASE}/monitors/new?type=synthetic_test")
    html = Elements(page.text)
    locations = [attrs["value"] for _, attrs in html.named("locationConfig.locations")]
    assert set(locations) >= {"us-east", "eu-central", "asia-pacific"}
    providers = html.named("alertConfig.notificationProviders")
    assert [attrs["value"] for _, attrs in providers] == [provider.json()["id"]]
    assert "On-call &lt;hook&gt;" in page.text
    options = [attrs.get("value") for tag, attrs in html.elements if tag == "option"]
    assert test.json()["id"] in options
    assert html.by_id("monitor-type")[0] == "select"
    selected = [attrs["value"] for tag, attrs in html.elements if tag == "option" and "selected" in attrs]
    assert "synthetic_test" in selected


def test_the_edit_form_is_prefilled_and_its_secrets_are_blank_with_a_hint_to_keep_them(
    aio, key, browser, internal_targets
):
    monitor = create_monitor(
        aio,
        key,
        {
            "name": "Orders API",
            "type": "http_request",
            "target": "http://127.0.0.1:9/orders",
            "frequencyMinutes": 7,
            "tags": ["prod", "api"],
            "config": {
                "method": "POST",
                "body": '{"ping": true}',
                "headers": {"X-Trace": "on", "Authorization": SECRET_HEADER},
                "auth": {"type": "basic", "username": "robot", "password": SECRET_PASSWORD},
                "keywordInBody": "ok",
                "degradedAfterMs": 800,
                "timeoutSeconds": 20,
            },
            "locationConfig": {"locations": ["eu-central"], "strategy": "any"},
            "alertConfig": {"failureThreshold": 3},
        },
    )
    page = browser.request("GET", f"{BASE}/monitors/{monitor['id']}/edit")
    assert page.status_code == 200
    html = Elements(page.text)
    value = lambda element_id: html.by_id(element_id)[1].get("value")  # noqa: E731
    assert value("monitor-name") == "Orders API"
    assert value("monitor-target") == "http://127.0.0.1:9/orders"
    assert value("monitor-frequency") == "7"
    assert value("monitor-tags") == "prod, api"
    assert value("http_request--timeoutSeconds") == "20"
    assert value("http_request--degradedAfterMs") == "800"
    assert value("http_request--keywordInBody") == "ok"
    assert value("http_request--auth-username") == "robot"
    assert html.by_id("http_request--body")[1]["text"] == '{"ping": true}'
    assert html.by_id("http_request--headers")[1]["text"] == "X-Trace: on"
    method = [a for t, a in html.elements if t == "option" and "selected" in a and a["value"] == "POST"]
    assert method
    checked = {a["value"] for _, a in html.named("locationConfig.locations") if "checked" in a}
    assert checked == {"eu-central"}
    assert value("alerts-failureThreshold") == "3"
    # secrets: blank inputs, a hint to keep them, and neither the secret nor its mask anywhere on the page
    password = html.by_id("http_request--auth-password")[1]
    assert password["type"] == "password" and password["value"] == "" and "data-keep-secret" in password
    assert "Leave blank to keep the stored value" in html.labels.get("", "") or (
        'id="http_request--auth-password-hint">Leave blank to keep the stored value' in page.text
    )
    secret_header = [a for _, a in html.elements if a.get("data-secret-header") == "Authorization"]
    assert secret_header and secret_header[0]["type"] == "password" and secret_header[0]["value"] == ""
    for secret in (SECRET_PASSWORD, SECRET_HEADER, mask(SECRET_PASSWORD), mask(SECRET_HEADER)):
        assert secret not in page.text
    assert "****" not in page.text
    form = [a for t, a in html.elements if t == "form" and "data-monitor-form" in a][0]
    assert (form["data-method"], form["data-path"]) == ("PATCH", f"/monitors/{monitor['id']}")


def test_names_and_values_are_escaped(aio, key, browser, internal_targets):
    hostile = '<script>alert("x")</script>'
    monitor = create_monitor(
        aio,
        key,
        {
            "name": hostile,
            "type": "http_request",
            "target": "http://127.0.0.1:9/?a=1&b=<i>",
            "tags": ['"><b>'],
            "config": {"keywordInBody": '"><img src=x>'},
        },
    )
    page = browser.request("GET", f"{BASE}/monitors/{monitor['id']}/edit")
    assert hostile not in page.text and "<img src=x>" not in page.text and '"><b>' not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    html = Elements(page.text)
    assert html.by_id("http_request--keywordInBody")[1]["value"] == '"><img src=x>'


def test_an_unknown_or_malformed_monitor_id_is_a_404_page(browser):
    assert browser.request("GET", f"{BASE}/monitors/{uuid.uuid4()}/edit").status_code == 404
    assert browser.request("GET", f"{BASE}/monitors/not-an-id/edit").status_code == 404


def test_cancel_returns_to_the_dashboard_page_the_user_came_from_and_never_elsewhere(browser):
    came_from = f"http://127.0.0.1:8080{BASE}/?status=down"
    page = browser.request("GET", f"{BASE}/monitors/new", headers={"referer": came_from})
    assert f'href="{BASE}/?status=down">Cancel' in page.text.replace("&amp;", "&")
    for foreign in ("https://evil.example/function/dashboard/", "http://127.0.0.1:8080/function/api/x"):
        page = browser.request("GET", f"{BASE}/monitors/new", headers={"referer": foreign})
        assert f'href="{BASE}/">Cancel' in page.text
