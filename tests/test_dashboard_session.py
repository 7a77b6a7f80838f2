"""The dashboard's door: sign-in with an API key, the signed session cookie, CSRF on every change, sign-out,
revoked keys, and the content-hashed static files. In process, through functions/dashboard's real app."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from shared.dashboard import session as sessions
from tests.api_client import function_app
from tests.factories import make_project

BASE = "/function/dashboard"


class Browser:
    """A cookie-keeping client of the dashboard app, as a browser on http://127.0.0.1 sees it."""

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

    def sign_in(self, key: str) -> httpx.Response:
        form = self.request("GET", f"{BASE}/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        return self.request("POST", f"{BASE}/login", data={"api_key": key, "csrf": token, "next": ""})

    def csrf(self) -> str:
        page = self.request("GET", f"{BASE}/")
        return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


@pytest.fixture
def key(clean, aio) -> str:
    return make_project(aio, "dashboard")


def test_sign_in_sets_a_signed_http_only_strict_cookie_naming_the_key_not_holding_it(aio, key):
    browser = Browser(aio)
    reply = browser.sign_in(key)
    assert reply.status_code == 303 and reply.headers["location"] == f"{BASE}/"
    set_cookie = [v for k, v in reply.headers.multi_items() if k == "set-cookie" and "sc_session=" in v][0]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    assert "Secure" not in set_cookie  # http on loopback
    assert key not in set_cookie and key.removeprefix("sck_") not in set_cookie
    assert f"Path={BASE}" in set_cookie


def test_the_cookie_is_secure_on_any_other_origin(aio, key):
    reply = Browser(aio, origin="https://dash.example.test").sign_in(key)
    set_cookie = [v for k, v in reply.headers.multi_items() if k == "set-cookie" and "sc_session=" in v][0]
    assert "Secure" in set_cookie


@pytest.mark.parametrize(
    "scheme, host, secure",
    [
        ("http", "127.0.0.1:8080", False),
        ("http", "127.5.6.7", False),
        ("http", "localhost:8080", False),
        ("http", "[::1]:8080", False),
        ("http", "10.0.0.5:8080", True),
        ("http", "dash.example.com", True),
        ("https", "127.0.0.1:8080", True),
        ("https", "dash.example.com", True),
        ("http", "", True),
    ],
)
def test_secure_unless_plain_http_on_loopback(scheme, host, secure):
    assert sessions.cookie_is_secure(scheme, host) is secure


def test_a_wrong_key_is_refused_on_the_form_and_sets_no_session(aio, key):
    browser = Browser(aio)
    reply = browser.sign_in("sck_" + "x" * 43)
    assert reply.status_code == 401
    assert "API key is not valid or has been revoked" in reply.text
    assert 'data-error-for="api_key"' in reply.text
    assert "sc_session" not in browser.cookies


def test_sign_in_without_the_forms_csrf_token_is_refused(aio, key):
    browser = Browser(aio)
    browser.request("GET", f"{BASE}/login")
    reply = browser.request("POST", f"{BASE}/login", data={"api_key": key, "csrf": "forged"})
    assert reply.status_code == 403 and "sc_session" not in browser.cookies


def test_next_only_leads_to_dashboard_pages(aio, key):
    browser = Browser(aio)
    browser.request("GET", f"{BASE}/login")
    token = browser.cookies["sc_login_csrf"]
    for hostile in (
        "https://evil.example/",
        "//evil.example/",
        f"{BASE}/..//evil.example",
        "/function/api/x",
    ):
        reply = browser.request(
            "POST", f"{BASE}/login", data={"api_key": key, "csrf": token, "next": hostile}
        )
        assert reply.headers["location"] == f"{BASE}/", hostile
        browser.request("GET", f"{BASE}/login")
        token = browser.cookies["sc_login_csrf"]
    reply = browser.request(
        "POST", f"{BASE}/login", data={"api_key": key, "csrf": token, "next": f"{BASE}/regions"}
    )
    assert reply.headers["location"] == f"{BASE}/regions"


def test_pages_send_the_signed_out_to_sign_in_and_the_api_door_answers_401(aio, key):
    browser = Browser(aio)
    reply = browser.request("GET", f"{BASE}/?status=down")
    assert reply.status_code == 303
    assert reply.headers["location"] == f"{BASE}/login?next={BASE}/%3Fstatus%3Ddown"
    door = browser.request("GET", f"{BASE}/api/monitors")
    assert door.status_code == 401 and door.json()["error"]["code"] == "unauthorized"


def test_a_tampered_or_expired_cookie_is_no_session(aio, key):
    browser = Browser(aio)
    browser.sign_in(key)
    good = browser.cookies["sc_session"]
    payload, signature = good.split(".")
    forged = sessions.new_session(uuid.uuid4(), uuid.uuid4())
    assert sessions.decode(good) is not None
    assert sessions.decode(sessions.encode(forged).split(".")[0] + "." + signature) is None
    assert sessions.decode(payload + "." + signature[::-1]) is None
    assert sessions.decode(good, now=time.time() + sessions.SESSION_SECONDS + 5) is None
    assert sessions.decode("garbage") is None and sessions.decode(None) is None


def test_the_api_door_refuses_a_change_without_the_csrf_header(aio, key):
    browser = Browser(aio)
    browser.sign_in(key)
    body = {"name": "no csrf", "type": "http_request", "target": "http://127.0.0.1:9/", "frequencyMinutes": 5}
    refused = browser.request("POST", f"{BASE}/api/monitors", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_refused"
    wrong = browser.request("POST", f"{BASE}/api/monitors", json=body, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    listed = browser.request("GET", f"{BASE}/api/monitors").json()
    assert listed["pagination"]["total"] == 0


def test_the_api_door_is_the_api_for_the_sessions_project(aio, key, infra, internal_targets):
    browser = Browser(aio)
    browser.sign_in(key)
    token = browser.csrf()
    body = {
        "name": "via door",
        "type": "http_request",
        "target": "http://127.0.0.1:9/",
        "frequencyMinutes": 5,
    }
    created = browser.request("POST", f"{BASE}/api/monitors", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201, created.text
    project = infra.sql("select project_id from api_keys where prefix = %s", (key[:12],))[0][0]
    assert str(project) == created.json()["projectId"]
    invalid = browser.request(
        "POST", f"{BASE}/api/monitors", json={**body, "frequencyMinutes": 0}, headers={"X-CSRF-Token": token}
    )
    assert invalid.status_code == 400 and invalid.json()["error"]["field"] == "frequencyMinutes"
    other = make_project(aio, "other")
    other_browser = Browser(aio)
    other_browser.sign_in(other)
    missing = other_browser.request("GET", f"{BASE}/api/monitors/{created.json()['id']}")
    assert missing.status_code == 404


def test_revoking_the_key_ends_its_sessions(aio, key, infra):
    browser = Browser(aio)
    browser.sign_in(key)
    assert browser.request("GET", f"{BASE}/api/monitors").status_code == 200
    infra.sql("update api_keys set revoked_at = now() where prefix = %s", (key[:12],))
    assert browser.request("GET", f"{BASE}/api/monitors").status_code == 401
    assert browser.request("GET", f"{BASE}/").status_code == 303


def test_sign_out_needs_the_csrf_token_then_ends_the_session(aio, key):
    browser = Browser(aio)
    browser.sign_in(key)
    token = browser.csrf()
    refused = browser.request("POST", f"{BASE}/logout", data={"csrf": "nope"})
    assert refused.status_code == 403
    out = browser.request("POST", f"{BASE}/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == f"{BASE}/login"
    assert "sc_session" not in browser.cookies
    assert browser.request("GET", f"{BASE}/").status_code == 303


def test_static_files_have_hashed_names_and_a_year_of_cache(aio, key):
    browser = Browser(aio)
    page = browser.request("GET", f"{BASE}/login")
    stylesheet = re.search(rf'href="({BASE}/static/app\.[0-9a-f]{{12}}\.css)"', page.text).group(1)
    script = re.search(rf'src="({BASE}/static/app\.[0-9a-f]{{12}}\.js)"', page.text).group(1)
    for url, media in ((stylesheet, "text/css"), (script, "javascript")):
        reply = browser.request("GET", url)
        assert reply.status_code == 200 and media in reply.headers["content-type"]
        assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert browser.request("GET", f"{BASE}/static/app.css").status_code == 404
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r'(src|href)="https?://', page.text)  # nothing from another host
