"""The dashboard's settings pages: notification providers, maintenance windows, synthetic tests and their
editor, project variables, API keys and the audit log. In process through functions/dashboard's real app (what
each page renders, that secrets never reach the HTML, that names are escaped), then in Chromium against the
real local stack (a webhook test that arrives, the editor, keys shown once, the audit log)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from markupsafe import escape
from playwright.sync_api import Page, expect

from shared import notify
from shared.dashboard.pages.settings import PROVIDER_FORMS
from tests.api_client import function_app
from tests.dashboard_browser import BASE, DESKTOP, PHONE, WatchedPage, chromium, screenshot, sign_in
from tests.factories import bearer, make_project

HOSTILE = '<script>alert("x")</script>&"\''
ESCAPED_HOSTILE = str(escape(HOSTILE))  # as Jinja2's autoescape writes it


class SignedIn:
    """A cookie-keeping client of functions/dashboard's app, signed in with a key, that reads pages and writes
    through the API door as the pages' scripts do (with the CSRF header)."""

    def __init__(self, aio, key: str):
        self.aio = aio
        self.cookies = httpx.Cookies()
        form = self.request("GET", f"{BASE}/login")
        login_token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        signed = self.request("POST", f"{BASE}/login", data={"api_key": key, "csrf": login_token})
        assert signed.status_code == 303, signed.text
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', self.page("/variables")).group(1)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def go():
            transport = httpx.ASGITransport(app=function_app("dashboard"))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8080", cookies=self.cookies, timeout=30
            ) as client:
                response = await client.request(method, path, **kwargs)
                self.cookies = httpx.Cookies(client.cookies)
                return response

        return self.aio.run(go())

    def write(self, method: str, path: str, body: dict | None = None) -> dict | None:
        reply = self.request(method, f"{BASE}/api{path}", json=body, headers={"X-CSRF-Token": self.token})
        assert reply.status_code < 300, reply.text
        return reply.json() if reply.content else None

    def page(self, path: str) -> str:
        reply = self.request("GET", f"{BASE}{path}")
        assert reply.status_code == 200, reply.text
        return reply.text


@pytest.fixture
def key(clean, aio) -> str:
    return make_project(aio, "settings")


@pytest.fixture
def browser(aio, key) -> SignedIn:
    return SignedIn(aio, key)


def assert_escaped(page: str) -> None:
    assert HOSTILE not in page and "<script>alert" not in page
    assert ESCAPED_HOSTILE in page


# --- notification providers ----------------------------------------------------------------------------------


def test_there_is_a_form_for_every_provider_type_with_every_config_field():
    assert list(PROVIDER_FORMS) == list(notify.PROVIDERS)
    for provider_type, (_, fields) in PROVIDER_FORMS.items():
        model = notify.PROVIDERS[provider_type].config_model
        expected = {field.alias or _camel(name) for name, field in model.model_fields.items()}
        assert {field.name for field in fields} == expected, provider_type


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_credentials_are_password_inputs():
    for provider_type, (_, fields) in PROVIDER_FORMS.items():
        provider = notify.PROVIDERS[provider_type]
        for field in fields:
            if field.name in provider.secret_fields and field.input != "textarea":
                assert field.input == "password", (provider_type, field.name)
    assert {f.name for f in PROVIDER_FORMS["telegram"][1] if f.input == "password"} == {"botToken"}


def test_the_provider_list_shows_masked_configs_and_never_a_secret(browser, internal_targets):
    path_token = "pathtoken0123456789"
    template_token = "templatesecret98765"
    browser.write(
        "POST",
        "/notification-providers",
        {
            "name": HOSTILE,
            "type": "webhook",
            "config": {
                "url": f"http://127.0.0.1:9/hooks/{path_token}",
                "template": '{"token": "' + template_token + '", "text": "{{message}}"}',
            },
        },
    )
    smtp_password = "smtp-password-4242"
    browser.write(
        "POST",
        "/notification-providers",
        {
            "name": "mail",
            "type": "email",
            "config": {
                "smtpHost": "127.0.0.1",
                "smtpPort": 2525,
                "security": "none",
                "username": "alerts",
                "password": smtp_password,
                "from": "alerts@example.com",
                "to": ["ops@example.com"],
            },
        },
    )
    page = browser.page("/notifications")
    for secret in (path_token, template_token, smtp_password):
        assert secret not in page
    assert "http://127.0.0.1:9" in page  # the host stays readable
    assert "ops@example.com" in page
    assert_escaped(page)
    assert page.count("data-provider-id=") == 2
    assert 'data-provider-test="' in page
    # one fieldset per type, the chosen one (webhook) enabled; credentials are password inputs
    for provider_type in notify.PROVIDERS:
        assert f'data-provider-fields="{provider_type}"' in page
    assert re.search(r'id="provider-email-password" name="config.password" type="password"', page)
    assert re.search(r'id="provider-telegram-botToken" name="config.botToken" type="password"', page)
    assert 'data-error-for="config.smtpHost"' in page


def test_the_type_in_the_query_chooses_the_form_shown_without_scripts(browser):
    page = browser.page("/notifications?type=telegram")
    assert re.search(r'data-provider-fields="telegram">', page)
    assert re.search(r'data-provider-fields="webhook" hidden disabled', page)
    assert browser.page("/notifications?type=nonsense").count('data-provider-fields="webhook">') == 1


# --- maintenance windows -------------------------------------------------------------------------------------


def test_maintenance_windows_list_their_monitors_by_name_and_times_for_the_browser(browser, internal_targets):
    monitor = browser.write(
        "POST",
        "/monitors",
        {"name": HOSTILE, "type": "http_request", "target": "http://127.0.0.1:9/", "frequencyMinutes": 5},
    )
    browser.write(
        "POST",
        "/maintenance-windows",
        {
            "name": "deploy <b>night</b>",
            "monitorIds": [monitor["id"]],
            "startsAt": "2030-01-01T22:00:00Z",
            "endsAt": "2030-01-01T23:30:00Z",
        },
    )
    browser.write(
        "POST",
        "/maintenance-windows",
        {"name": "weekly", "cron": "0 2 * * 0", "durationMinutes": 60, "timezone": "Europe/Berlin"},
    )
    page = browser.page("/maintenance")
    assert "deploy &lt;b&gt;night&lt;/b&gt;" in page
    assert '<time data-local datetime="2030-01-01T22:00:00Z">' in page
    assert "<code>0 2 * * 0</code> for 60 min" in page and "Europe/Berlin" in page
    assert "All monitors" in page  # the cron window has none, so it covers the project
    assert_escaped(page)
    assert f'name="monitorIds" value="{monitor["id"]}"' in page


# --- synthetic tests -----------------------------------------------------------------------------------------

SCRIPT = """async def run(page, context, variables):
    # </textarea><script>alert(1)</script>
    await page.goto("https://example.com/")
"""


def test_synthetic_tests_list_and_edit_with_their_script_escaped(browser):
    created = browser.write("POST", "/synthetic-tests", {"title": HOSTILE, "script": SCRIPT})
    listing = browser.page("/synthetic")
    assert_escaped(listing)
    assert f'href="{BASE}/synthetic/{created["id"]}"' in listing
    editor = browser.page(f"/synthetic/{created['id']}")
    assert_escaped(editor)
    assert "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in editor
    assert editor.count("</textarea>") == 1
    assert f'data-method="PATCH" data-path="/synthetic-tests/{created["id"]}"' in editor
    assert 'data-error-for="script"' in editor
    new = browser.page("/synthetic/new")
    assert 'data-method="POST" data-path="/synthetic-tests"' in new
    assert "async def run(page, context, variables):" in new


def test_an_unknown_synthetic_test_is_the_apis_404(browser):
    for test_id in ("not-a-uuid", "00000000-0000-4000-8000-000000000000"):
        reply = browser.request("GET", f"{BASE}/synthetic/{test_id}")
        assert reply.status_code == 404 and "synthetic test not found" in reply.text


# --- project variables ---------------------------------------------------------------------------------------


def test_a_secret_variables_value_never_reaches_the_page(browser):
    secret_value = "hunter2-the-real-password"
    browser.write("POST", "/variables", {"name": "LOGIN_PASSWORD", "value": secret_value, "isSecret": True})
    browser.write("POST", "/variables", {"name": "GREETING", "value": HOSTILE})
    page = browser.page("/variables")
    assert secret_value not in page
    assert secret_value[2:-2] not in page
    assert "hu****rd" in page or "****" in page  # the API's mask, as it answered it
    assert_escaped(page)
    # the secret's change form is a password input with nothing in it
    secret_form = page[page.index('data-path="/variables/LOGIN_PASSWORD"') :]
    secret_input = re.search(r"<input [^>]*name=\"value\"[^>]*>", secret_form).group(0)
    assert 'type="password"' in secret_input and "value=" not in secret_input.replace('name="value"', "")


# --- API keys ------------------------------------------------------------------------------------------------


def test_api_keys_are_listed_by_prefix_and_the_own_keys_revoke_warns_of_signing_out(browser, key):
    other = browser.write("POST", "/api-keys", {"name": HOSTILE})
    browser.write("DELETE", f"/api-keys/{other['id']}")
    page = browser.page("/api-keys")
    assert key not in page and other["key"] not in page
    assert f"<code>{key[:12]}…</code>" in page and f"<code>{other['prefix']}…</code>" in page
    assert_escaped(page)
    assert "this session" in page
    own_row = page[page.index("this session") :]
    assert "signs you out at your next click" in own_row[: own_row.index("</tr>")]
    revoked_row = re.search(
        rf'<tr data-api-key-id="{other["id"]}" class="revoked">.*?</tr>', page, re.S
    ).group(0)
    assert 'aria-label="Revoke' not in revoked_row  # a revoked key has nothing left to revoke
    assert "data-new-key-panel hidden" in page


# --- audit log -----------------------------------------------------------------------------------------------


def test_the_audit_log_is_newest_first_paged_and_names_the_key(browser, internal_targets):
    for number in range(50):
        browser.write("POST", "/variables", {"name": f"V{number:02d}", "value": "plain"})
    created = browser.write("POST", "/synthetic-tests", {"title": HOSTILE, "script": SCRIPT})
    browser.write(
        "POST",
        "/monitors",
        {"name": HOSTILE, "type": "http_request", "target": "http://127.0.0.1:9/", "frequencyMinutes": 5},
    )
    first = browser.page("/audit-log")
    ids = [int(i) for i in re.findall(r'data-audit-id="(\d+)"', first)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    assert re.findall(r'data-action="([a-z_.]+)"', first)[:3] == [
        "monitor.create",
        "synthetic_test.create",
        "project_variable.create",
    ]
    assert "test (sck_" in first  # the key that made each change, by name and prefix
    # the names reach the page inside JSON (its quotes backslashed), escaped all the same
    assert "<script>alert" not in first and "&lt;script&gt;alert(\\&#34;x\\&#34;)" in first
    assert "<details><summary>" in first  # a monitor's whole spec folds away; a title stays inline
    assert f'href="{BASE}/synthetic/{created["id"]}"' in first
    assert 'rel="next"' in first and f'href="{BASE}/audit-log?page=2"' in first
    second = browser.page("/audit-log?page=2")
    assert len(re.findall(r'data-audit-id="', second)) == 2
    assert "V00" in second


# --- in Chromium, against the real local stack ---------------------------------------------------------------

VIEWPORTS = (("desktop", DESKTOP), ("phone", PHONE))


@pytest.fixture
def stack_key(stack, clean, aio) -> str:
    return make_project(aio, "settings in chromium")


@pytest.fixture(scope="module")
def chrome(stack) -> Iterator:
    with chromium() as browser:
        yield browser


@contextmanager
def signed_in_page(chrome, stack, key: str, path: str, **context_options) -> Iterator[WatchedPage]:
    options = {"viewport": DESKTOP, "color_scheme": "light", **context_options}
    context = chrome.new_context(**options)
    try:
        watched = WatchedPage(context)
        sign_in(watched.page, stack.gateway_url, key, path)
        yield watched
    finally:
        context.close()


def api(stack, key: str, method: str, path: str, body: dict | None = None):
    reply = httpx.request(
        method, f"{stack.gateway_url}/function/api{path}", json=body, headers=bearer(key), timeout=60
    )
    assert reply.status_code < 300, reply.text
    return reply.json() if reply.content else None


def accept_next_dialog(page: Page) -> list[str]:
    """Accepts the next confirm() and keeps its text, so a test can read what the user was asked."""
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    return asked


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href], summary')].filter((el) => {
  const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
    || el.getAttribute("aria-labelledby") || el.textContent.trim();
  return !named;
}).map((el) => el.outerHTML.slice(0, 120))"""


def unlabelled_controls(page: Page) -> list[str]:
    """Every control a keyboard reaches has a name a screen reader can say (a label, aria-label or text)."""
    return page.evaluate(UNLABELLED_CONTROLS)


def audit_actions(page: Page, stack) -> list[str]:
    page.goto(f"{stack.gateway_url}{BASE}/audit-log")
    return page.locator("tr[data-action]").evaluate_all("rows => rows.map(row => row.dataset.action)")


def test_a_webhook_provider_is_created_sent_a_test_that_arrives_and_deleted(
    chrome, stack, stack_key, webhook_receiver
):
    with signed_in_page(chrome, stack, stack_key, "/notifications") as watched:
        page = watched.page
        page.get_by_label("Name").fill("ops hook")
        page.get_by_label("Type").select_option("email")
        expect(page.get_by_label("SMTP host")).to_be_visible()
        expect(page.get_by_label("URL", exact=True)).to_have_count(0)  # webhook's fields left the form
        page.get_by_role("button", name="Add provider").click()
        smtp_error = page.locator('[data-error-for="config.smtpHost"]')
        expect(smtp_error).to_be_visible()
        expect(smtp_error).to_contain_text("config.smtpHost: ")  # the API's message for the empty host
        expect(page.get_by_label("SMTP host")).to_have_attribute("aria-invalid", "true")
        screenshot(page, "settings-notifications-error-desktop-light")

        page.get_by_label("Type").select_option("webhook")
        page.get_by_label("URL", exact=True).fill(webhook_receiver.url + "alerts/hook-token-123456")
        page.get_by_role("button", name="Add provider").click()
        row = page.locator("tr[data-provider-id]", has_text="ops hook")
        expect(row).to_be_visible()
        expect(row).not_to_contain_text("hook-token-123456")  # the URL's path is masked

        row.get_by_role("button", name="Send a test to ops hook").click()
        outcome = row.locator("[data-test-outcome]")
        expect(outcome).to_have_attribute("data-test-status", "sent", timeout=60_000)
        expect(outcome).to_contain_text("Test sent after 1 attempt")
        screenshot(page, "settings-notifications-test-sent-desktop-light")
        received = webhook_receiver.wait_for_requests(1)[0]
        assert received.method == "POST" and received.path == "/alerts/hook-token-123456"
        assert received.json()["monitorName"] == "ops hook"  # the sample alert names the provider

        row.get_by_role("button", name="Disable ops hook").click()
        expect(page.locator("tr[data-provider-id]", has_text="ops hook")).to_contain_text("No")
        asked = accept_next_dialog(page)
        page.get_by_role("button", name="Delete ops hook").click()
        expect(page.locator("tr[data-provider-id]")).to_have_count(0)
        assert "Delete the provider “ops hook”?" in asked[0]

        actions = audit_actions(page, stack)
        assert actions[:3] == ["provider.delete", "provider.update", "provider.create"]
        watched.assert_no_console_errors(allowed=(r"status of 400",))


def test_a_maintenance_window_is_entered_in_local_time_sent_as_utc_and_deleted(chrome, stack, stack_key):
    monitor = api(
        stack,
        stack_key,
        "POST",
        "/monitors",
        {"name": "checkout", "type": "http_request", "target": "http://127.0.0.1:9/", "frequencyMinutes": 5},
    )
    with signed_in_page(chrome, stack, stack_key, "/maintenance", timezone_id="Asia/Tokyo") as watched:
        page = watched.page
        expect(page.get_by_text("(Asia/Tokyo)").first).to_be_visible()
        page.get_by_label("Name").fill("database upgrade")
        page.get_by_label("Starts").fill("2030-06-01T02:00")
        page.get_by_label("Ends").fill("2030-06-01T01:00")
        page.get_by_label("checkout").check()
        page.get_by_role("button", name="Add window").click()
        ends_error = page.locator('[data-error-for="endsAt"]')
        expect(ends_error).to_contain_text("must be after startsAt")
        expect(page.get_by_label("Ends")).to_have_attribute("aria-invalid", "true")
        screenshot(page, "settings-maintenance-error-desktop-light")

        page.get_by_label("Ends").fill("2030-06-01T04:30")
        page.get_by_role("button", name="Add window").click()
        expect(page.locator("tr[data-window-id]", has_text="database upgrade")).to_be_visible()
        [window] = api(stack, stack_key, "GET", "/maintenance-windows")
        # 02:00 and 04:30 in Tokyo (UTC+9) are 17:00 and 19:30 UTC the day before
        assert window["startsAt"].startswith("2030-05-31T17:00:00")
        assert window["endsAt"].startswith("2030-05-31T19:30:00")
        assert window["monitorIds"] == [monitor["id"]]
        row = page.locator("tr[data-window-id]", has_text="database upgrade")
        expect(row).to_contain_text("checkout")
        expect(row.locator("time").first).to_contain_text("2030")

        page.get_by_label("On a schedule (cron)").check()
        expect(page.get_by_label("Time zone")).to_have_value("Asia/Tokyo")
        page.get_by_label("Name").fill("weekly")
        page.get_by_label("Cron", exact=True).fill("0 2 * * 0")
        page.get_by_label("Duration (minutes)").fill("45")
        page.get_by_role("button", name="Add window").click()
        expect(page.locator("tr[data-window-id]", has_text="weekly")).to_contain_text("for 45 min")

        accept_next_dialog(page)
        page.get_by_role("button", name="Delete database upgrade").click()
        expect(page.locator("tr[data-window-id]", has_text="database upgrade")).to_have_count(0)
        actions = audit_actions(page, stack)
        assert actions[:3] == [
            "maintenance_window.delete",
            "maintenance_window.create",
            "maintenance_window.create",
        ]
        watched.assert_no_console_errors(allowed=(r"status of 400",))


def test_a_synthetic_test_is_written_in_the_editor_by_keyboard(chrome, stack, stack_key):
    with signed_in_page(chrome, stack, stack_key, "/synthetic") as watched:
        page = watched.page
        page.get_by_role("link", name="New test").click()
        page.get_by_label("Title").fill("Sign-in journey")
        editor = page.get_by_label("Script")
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.type("async def run(page, context, variables):")
        page.keyboard.press("Enter")  # keeps the block's indent: four spaces after a colon
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        page.keyboard.type('await page.goto("about:blank")')
        page.keyboard.press("Enter")
        page.keyboard.press("Shift+Tab")
        page.keyboard.type("def broken(:")
        assert editor.input_value() == (
            'async def run(page, context, variables):\n    await page.goto("about:blank")\ndef broken(:'
        )
        expect(page.locator(".line-numbers")).to_have_text("1\n2\n3")
        typed = editor.input_value()
        page.keyboard.press("Control+A")
        page.keyboard.press("Tab")  # a selection indents every line it touches
        assert editor.input_value() == "\n".join("    " + line for line in typed.split("\n"))
        page.keyboard.press("Shift+Tab")
        assert editor.input_value() == typed
        page.keyboard.press("Control+End")
        page.get_by_role("button", name="Create test").click()
        script_error = page.locator('[data-error-for="script"]')
        expect(script_error).to_be_visible()
        expect(script_error).to_contain_text("line 3")
        expect(editor).to_have_attribute("aria-invalid", "true")
        screenshot(page, "settings-synthetic-editor-error-desktop-light")

        editor.focus()
        page.keyboard.press("Control+End")
        for _ in range(len("def broken(:")):
            page.keyboard.press("Backspace")
        page.keyboard.press("Backspace")  # the empty third line
        page.keyboard.press("Escape")
        page.keyboard.press("Tab")  # after Esc, Tab leaves the editor instead of indenting
        assert page.evaluate("document.activeElement.textContent") == "Create test"
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"{BASE}/synthetic/[0-9a-f-]{{36}}$"))
        expect(page.get_by_role("heading", name="Sign-in journey")).to_be_visible()
        [stored] = api(stack, stack_key, "GET", "/synthetic-tests")
        assert (
            stored["script"] == 'async def run(page, context, variables):\n    await page.goto("about:blank")'
        )

        page.get_by_label("Title").fill("Sign-in journey, renamed")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#toast")).to_have_text("Saved")
        expect(page.get_by_role("heading", name="Sign-in journey, renamed")).to_be_visible()
        page.get_by_role("link", name="Synthetic tests", exact=True).last.click()
        expect(page.locator("tr[data-synthetic-test-id]")).to_contain_text("renamed")

        actions = audit_actions(page, stack)
        assert actions[:2] == ["synthetic_test.update", "synthetic_test.create"]
        watched.assert_no_console_errors(allowed=(r"status of 400",))


def test_a_new_api_key_is_shown_once_works_and_is_revoked(chrome, stack, stack_key):
    with signed_in_page(chrome, stack, stack_key, "/api-keys") as watched:
        page = watched.page
        watched.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.get_by_label("Name").focus()
        page.keyboard.type("deploys")
        page.keyboard.press("Enter")
        panel = page.locator("[data-new-key-panel]")
        expect(panel).to_be_visible()
        new_key = page.get_by_role("textbox", name=re.compile("^Key")).input_value()
        assert new_key.startswith("sck_")
        expect(panel).to_contain_text("shown this once")
        screenshot(page, "settings-api-keys-new-key-desktop-light")
        page.get_by_role("button", name="Copy").click()
        expect(panel.locator("[data-copy-state]")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == new_key
        assert api(stack, new_key, "GET", "/project")["name"] == "settings in chromium"

        page.reload()
        expect(page.locator("[data-new-key-panel]")).to_be_hidden()
        assert new_key not in page.content()
        assert page.locator("[data-new-key-value]").input_value() == ""
        row = page.locator("tr[data-api-key-id]", has_text="deploys")
        expect(row).to_contain_text(new_key[:12])

        own = page.locator("tr[data-api-key-id]", has_text="this session")
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        own.get_by_role("button", name=re.compile("^Revoke")).click()
        expect(own).to_be_visible()
        assert "signs you out at your next click" in asked[0]

        asked = accept_next_dialog(page)
        row.get_by_role("button", name="Revoke deploys").click()
        expect(page.locator("tr.revoked", has_text="deploys")).to_be_visible()
        assert "signs you out" not in asked[0]
        refused = httpx.get(f"{stack.gateway_url}/function/api/project", headers=bearer(new_key), timeout=60)
        assert refused.status_code == 401

        actions = audit_actions(page, stack)
        assert actions[:2] == ["api_key.revoke", "api_key.create"]

        page.goto(f"{stack.gateway_url}{BASE}/api-keys")
        accept_next_dialog(page)
        page.get_by_role("button", name=re.compile("^Revoke test")).click()
        page.wait_for_url(re.compile(r"/login\?next="))  # the session's own key: signed out at once
        expect(page.get_by_label("API key")).to_be_visible()
        watched.assert_no_console_errors()


def test_a_secret_variable_is_typed_hidden_and_shown_masked(chrome, stack, stack_key):
    with signed_in_page(chrome, stack, stack_key, "/variables") as watched:
        page = watched.page
        page.get_by_label("Name").fill("LOGIN_PASSWORD")
        page.get_by_label("Secret (stored encrypted, shown masked)").check()
        expect(page.get_by_label("Value", exact=True)).to_have_attribute("type", "password")
        page.get_by_label("Value", exact=True).fill("correct horse battery")
        page.get_by_role("button", name="Add variable").click()
        row = page.locator("tr[data-variable-name=LOGIN_PASSWORD]")
        expect(row).to_be_visible()
        assert "correct horse battery" not in page.content()

        page.get_by_label("Name").fill("1nvalid")
        page.get_by_label("Value", exact=True).fill("x")
        page.get_by_role("button", name="Add variable").click()
        expect(page.locator('[data-error-for="name"]').first).to_contain_text("must start with a letter")

        row.get_by_text("Change").click()
        row.get_by_label("New value").fill("a new secret value")
        screenshot(page, "settings-variables-change-desktop-light")
        with page.expect_navigation():  # saved, the list is loaded again
            row.get_by_role("button", name="Save LOGIN_PASSWORD").click()
        expect(page.locator("tr[data-variable-name=LOGIN_PASSWORD]")).to_be_visible()
        assert "a new secret value" not in page.content()
        actions = audit_actions(page, stack)
        assert actions[:2] == ["project_variable.update", "project_variable.create"]
        watched.assert_no_console_errors(allowed=(r"status of 400",))


def test_every_settings_page_at_both_widths_in_light_and_dark(chrome, stack, stack_key, webhook_receiver):
    monitor = api(
        stack,
        stack_key,
        "POST",
        "/monitors",
        {
            "name": "checkout api",
            "type": "http_request",
            "target": "http://127.0.0.1:9/",
            "frequencyMinutes": 5,
        },
    )
    provider = api(
        stack,
        stack_key,
        "POST",
        "/notification-providers",
        {
            "name": "on-call webhook",
            "type": "webhook",
            "config": {"url": webhook_receiver.url + "hook/abcdef123"},
        },
    )
    api(stack, stack_key, "POST", f"/notification-providers/{provider['id']}/test")
    api(
        stack,
        stack_key,
        "POST",
        "/maintenance-windows",
        {
            "name": "quarterly upgrade",
            "monitorIds": [monitor["id"]],
            "startsAt": "2030-01-01T22:00:00Z",
            "endsAt": "2030-01-01T23:30:00Z",
        },
    )
    test = api(stack, stack_key, "POST", "/synthetic-tests", {"title": "Sign-in journey", "script": SCRIPT})
    api(
        stack,
        stack_key,
        "POST",
        "/variables",
        {"name": "LOGIN_PASSWORD", "value": "s3cret-pass", "isSecret": True},
    )
    api(stack, stack_key, "POST", "/variables", {"name": "BASE_URL", "value": "https://shop.example.com/"})
    api(stack, stack_key, "POST", "/api-keys", {"name": "CI deploys"})
    pages = {
        "notifications": "/notifications",
        "maintenance": "/maintenance",
        "synthetic": "/synthetic",
        "synthetic-editor": f"/synthetic/{test['id']}",
        "variables": "/variables",
        "api-keys": "/api-keys",
        "audit-log": "/audit-log",
    }
    for width, viewport in VIEWPORTS:
        for scheme in ("light", "dark"):
            with signed_in_page(
                chrome, stack, stack_key, "/variables", viewport=viewport, color_scheme=scheme
            ) as w:
                for name, path in pages.items():
                    w.page.goto(f"{stack.gateway_url}{BASE}{path}")
                    expect(w.page.locator("h1")).to_be_visible()
                    overflow = w.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, (name, width, overflow)
                    assert unlabelled_controls(w.page) == [], name
                    screenshot(w.page, f"settings-{name}-{width}-{scheme}")
                w.assert_no_console_errors()
