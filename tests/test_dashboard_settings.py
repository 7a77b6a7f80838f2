"""The dashboard's settings pages: notification providers, maintenance windows, synthetic tests and their
editor, project variables, API keys and the audit log. In process through functions/dashboard's real app (what
each page renders, that secrets never reach the HTML, that names are escaped), then in Chromium against the
real local stack (a webhook test that arrives, the editor, keys shown once, the audit log)."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from shared import notify
from shared.dashboard.pages.settings import PROVIDER_FORMS
from tests.factories import make_project
from tests.test_dashboard_session import BASE, Browser

HOSTILE = '<script>alert("x")</script>&"\''
ESCAPED_HOSTILE = str(escape(HOSTILE))  # as Jinja2's autoescape writes it


class SignedIn(Browser):
    """A signed-in Browser that also writes through the API door, as the pages' scripts do."""

    def __init__(self, aio, key: str):
        super().__init__(aio)
        self.sign_in(key)
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', self.page("/variables")).group(1)

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


def test_the_audit_log_is_newest_first_paged_and_names_the_key(browser):
    for number in range(52):
        browser.write("POST", "/variables", {"name": f"V{number:02d}", "value": HOSTILE})
    first = browser.page("/audit-log")
    ids = [int(i) for i in re.findall(r'data-audit-id="(\d+)"', first)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    assert "project_variable.create" in first and "test (sck_" in first
    assert 'rel="next"' in first and f'href="{BASE}/audit-log?page=2"' in first
    second = browser.page("/audit-log?page=2")
    assert len(re.findall(r'data-audit-id="', second)) == 2
    assert '"name": "V00"' in second or "V00" in second
