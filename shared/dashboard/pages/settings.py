"""The project's settings pages: notification providers, maintenance windows, synthetic tests and their script
editor, project variables, API keys and the audit log. Every read is the API's answer for the session's key and
every write goes through the API door from the browser, so validation, masking and audit stay the API's."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from shared.dashboard.web import PageContext, as_uuid_or_none, page
from shared.errors import ApiError

AUDIT_PAGE_SIZE = 50
AUDIT_INLINE_CHANGES = 100  # characters of JSON shown in the row; longer changes fold into a disclosure
# Where the audit log links an object it names (a deleted one is not linked: its page is gone).
AUDIT_OBJECT_PAGES = {
    "monitor": "/monitors/{id}",
    "synthetic_test": "/synthetic/{id}",
    "maintenance_window": "/maintenance",
    "notification_provider": "/notifications",
    "project_variable": "/variables",
    "api_key": "/api-keys",
}
MONITOR_CHOICES = 100  # the API's largest page; a window for more monitors is one API call away


@dataclass(frozen=True)
class ConfigField:
    """One input of a provider's create form; `name` is the config key as the API spells it (camelCase)."""

    name: str
    label: str
    input: str = "text"  # text, url, password, email, number, select, textarea
    kind: str = ""  # how app.js reads it (data-kind): number, list, optional
    required: bool = True
    hint: str = ""
    default: str = ""
    options: tuple[str, ...] = ()


_CHAT_HINT = (
    "The incoming-webhook URL as {service} shows it; its path is the credential, so it is never shown again."
)

# One form per provider type of shared.notify.PROVIDERS (tests/test_dashboard_settings.py keeps the two in step).
# Fields that carry a credential are password inputs: the API masks them on every read, so they are write-only.
PROVIDER_FORMS: dict[str, tuple[str, tuple[ConfigField, ...]]] = {
    "webhook": (
        "Webhook",
        (
            ConfigField("url", "URL", "url", hint="Alerts are POSTed here as JSON."),
            ConfigField(
                "template",
                "Body template",
                "textarea",
                "optional",
                required=False,
                hint="JSON with {{variables}}; empty sends every variable. Masked once saved.",
            ),
        ),
    ),
    "email": (
        "Email",
        (
            ConfigField("smtpHost", "SMTP host"),
            ConfigField("smtpPort", "SMTP port", "number", "number", default="587"),
            ConfigField("security", "Security", "select", options=("starttls", "ssl", "none")),
            ConfigField("username", "Username", kind="optional", required=False),
            ConfigField("password", "Password", "password", "optional", required=False),
            ConfigField("from", "From", "email"),
            ConfigField("to", "To", kind="list", hint="Addresses separated by commas (up to 20)."),
        ),
    ),
    "slack": (
        "Slack",
        (ConfigField("webhookUrl", "Webhook URL", "password", hint=_CHAT_HINT.format(service="Slack")),),
    ),
    "discord": (
        "Discord",
        (ConfigField("webhookUrl", "Webhook URL", "password", hint=_CHAT_HINT.format(service="Discord")),),
    ),
    "telegram": (
        "Telegram",
        (
            ConfigField("botToken", "Bot token", "password", hint="From @BotFather, e.g. 123456:ABC…"),
            ConfigField("chatId", "Chat ID", hint="A number, or @channelname."),
        ),
    ),
    "teams": (
        "Microsoft Teams",
        (
            ConfigField(
                "webhookUrl",
                "Workflow URL",
                "password",
                hint="A Power Automate workflow URL (Office 365 connectors are retired).",
            ),
        ),
    ),
    "apprise": (
        "Apprise URL",
        (
            ConfigField(
                "url",
                "Apprise URL",
                "password",
                hint="Any Apprise service URL (ntfy://, pover://, …); it carries its tokens, so it is masked.",
            ),
        ),
    ),
}


def compact_json(value) -> str:
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@page("/notifications")
async def notification_providers(ctx: PageContext):
    providers = await ctx.api.get("/notification-providers")
    chosen = ctx.request.query_params.get("type", "webhook")
    return ctx.render(
        "settings/notifications.html",
        providers=providers,
        provider_forms=PROVIDER_FORMS,
        chosen_type=chosen if chosen in PROVIDER_FORMS else "webhook",
        compact_json=compact_json,
        nav="/notifications",
    )


@page("/maintenance")
async def maintenance_windows(ctx: PageContext):
    windows, monitors = await asyncio.gather(
        ctx.api.get("/maintenance-windows"),
        ctx.api.get("/monitors", {"limit": MONITOR_CHOICES, "sort": "name"}),
    )
    return ctx.render(
        "settings/maintenance.html",
        windows=windows,
        monitors=monitors["data"],
        more_monitors=monitors["pagination"]["total"] - len(monitors["data"]),
        monitor_names={monitor["id"]: monitor["name"] for monitor in monitors["data"]},
        nav="/maintenance",
    )


@page("/synthetic")
async def synthetic_tests(ctx: PageContext):
    tests = await ctx.api.get("/synthetic-tests")
    return ctx.render("settings/synthetic_list.html", tests=tests, nav="/synthetic")


NEW_SCRIPT = """async def run(page, context, variables):
    await page.goto("https://example.com/")
    await page.get_by_role("heading", name="Example Domain").wait_for()
"""


@page("/synthetic/new")
async def new_synthetic_test(ctx: PageContext):
    return ctx.render("settings/synthetic_edit.html", test=None, script=NEW_SCRIPT, nav="/synthetic")


@page("/synthetic/{test_id}")
async def edit_synthetic_test(ctx: PageContext, test_id: str):
    if as_uuid_or_none(test_id) is None:
        raise ApiError(404, "not_found", "synthetic test not found")
    test = await ctx.api.get(f"/synthetic-tests/{test_id}")
    return ctx.render("settings/synthetic_edit.html", test=test, script=test["script"], nav="/synthetic")


@page("/variables")
async def project_variables(ctx: PageContext):
    variables = await ctx.api.get("/variables")
    return ctx.render("settings/variables.html", variables=variables, nav="/variables")


@page("/api-keys")
async def api_keys(ctx: PageContext):
    keys = await ctx.api.get("/api-keys")
    return ctx.render(
        "settings/api_keys.html",
        keys=keys,
        session_key_id=str(ctx.principal.api_key_id),
        nav="/api-keys",
    )


@page("/audit-log")
async def audit_log(ctx: PageContext):
    filters = ctx.query("page")
    entries, keys = await asyncio.gather(
        ctx.api.get("/audit-log", {**filters, "limit": AUDIT_PAGE_SIZE}),
        ctx.api.get("/api-keys"),
    )
    return ctx.render(
        "settings/audit_log.html",
        entries=entries,
        filters=filters,
        key_names={key["id"]: f"{key['name']} ({key['prefix']}…)" for key in keys},
        compact_json=compact_json,
        pretty_json=pretty_json,
        inline_changes=AUDIT_INLINE_CHANGES,
        object_pages=AUDIT_OBJECT_PAGES,
        nav="/audit-log",
    )
