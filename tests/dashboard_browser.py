"""Driving the dashboard in Debian's Chromium with Playwright: a signed-in page, its console watched for errors,
and screenshots saved under test-artifacts/dashboard/ (git-ignored) for a person to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from openfaas.local.stack import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "dashboard"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BASE = "/function/dashboard"


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class WatchedPage:
    """A page whose console errors and uncaught exceptions are collected, so a test can assert there were none."""

    def __init__(self, context: BrowserContext):
        self.context = context
        self.page: Page = context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console", lambda message: message.type == "error" and self.problems.append(message.text)
        )
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    def assert_no_console_errors(self, allowed: tuple[str, ...] = ()) -> None:
        """allowed: patterns of errors a test causes on purpose (a 403 it provokes is logged by Chromium)."""
        unexpected = [p for p in self.problems if not any(re.search(a, p) for a in allowed)]
        assert not unexpected, unexpected


@contextmanager
def watched_page(browser: Browser, *, viewport=DESKTOP, dark: bool = False) -> Iterator[WatchedPage]:
    context = browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light")
    try:
        yield WatchedPage(context)
    finally:
        context.close()


def sign_in(page: Page, gateway_url: str, key: str, next_path: str = "/") -> None:
    page.goto(f"{gateway_url}{BASE}{next_path}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(f"{gateway_url}{BASE}") and "/login" not in url)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
