"""The dashboard at 10,000 monitors with 30 days of results (bench/dashboard_seed.py), measured in Chromium through
the local gateway: list rows visible, a search narrowing the list, the detail page's chart drawn, server time per
page (p50/p99), the tab's JS heap; each as a ratio against a static page of the same bytes served by a bench-only
function behind the same gateway, in the same run.

    PYTHONPATH=. .venv/bin/python bench/dashboard.py [--runs 10] [--requests 200] [--data-dir DIR]

--data-dir keeps the embedded PostgreSQL (and the seed: 15 GB, 36 minutes on a busy 2-core machine) between runs; without it
everything lives in a temporary folder. DATABASE_URL and REDIS_URL, when set, are used instead (migrated and
seeded once, marked by the seeder). Needs Debian's Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import yaml  # noqa: E402

from bench.dashboard_seed import SeededProject, seed  # noqa: E402
from openfaas.local import runtime  # noqa: E402
from openfaas.local.runtime import LocalStack  # noqa: E402
from openfaas.local.services import embedded_postgres, embedded_redis, free_port  # noqa: E402
from openfaas.local.stack import DEFAULT_STACK, load_stack, stack_functions  # noqa: E402
from shared.migrate import apply_migrations  # noqa: E402
from shared.security import generate_key  # noqa: E402
from shared.settings import reset_settings_cache  # noqa: E402

BASE = "/function/dashboard"
BASELINE_FUNCTION = "dashboard-baseline"
BASELINE = f"/function/{BASELINE_FUNCTION}"
CHROMIUM = "/usr/bin/chromium"
ROW = "[data-monitor-id]"
CHART_POINT = '[data-chart="response-time"] circle.point'
SESSION_COOKIE = "sc_session"
# Sign-in sets the session and clears the sign-in csrf cookie in one response. Until ffae5f1 the local gateway
# forwarded headers through httpx's Headers.items(), which joins the two Set-Cookie lines into one that neither
# Chromium nor httpx reads back; a sign-in that keeps no session says so.
JOINED_COOKIES = (
    "If the gateway joined the response's Set-Cookie headers into one line (openfaas/local/gateway.py forwarding "
    "response.headers.items() instead of multi_items()), no client can keep the session."
)
GOAL_INTERACTIVE_S = 1.0
GOAL_SERVER_P99_MS = 100.0


# --- the environment and the stack ------------------------------------------------------------------


@contextmanager
def services(data_dir: Path | None) -> Iterator[Path]:
    """PostgreSQL and Redis: DATABASE_URL/REDIS_URL if given, else embedded under data_dir (kept) or a temporary
    folder (removed afterwards: the seed is ~15 GB). The credential key lives beside the data, since the seeded
    providers' configs are sealed with it."""
    base = data_dir or Path(tempfile.mkdtemp(prefix="sc-bench-dashboard-"))
    base.mkdir(parents=True, exist_ok=True)
    started = []
    try:
        if not os.environ.get("DATABASE_URL"):
            os.environ["SC_EMBEDDED_PG_FAST"] = "1"  # benchmark data need not survive a crash
            started.append(embedded_postgres(base / "postgres"))
            os.environ["DATABASE_URL"] = started[-1].url
        if not os.environ.get("REDIS_URL"):
            started.append(embedded_redis(base / "redis"))
            os.environ["REDIS_URL"] = started[-1].url
        key_file = base / "credential-key"
        if not os.environ.get("SC_CREDENTIAL_KEY"):
            if not key_file.exists():
                key_file.write_text(generate_key())
            os.environ["SC_CREDENTIAL_KEY"] = key_file.read_text().strip()
        os.environ["ALLOW_INTERNAL_TARGETS"] = "true"  # the seeded targets are on loopback
        reset_settings_cache()
        apply_migrations(os.environ["DATABASE_URL"])
        yield base
    finally:
        for server in reversed(started):
            server.stop()
        if data_dir is None:
            shutil.rmtree(base, ignore_errors=True)


def stack_with_baseline(base: Path, pages: Path) -> Path:
    """stack.yml plus the bench-only static function, written to a temporary stack file (handlers made absolute,
    since faas-cli resolves them against the file's folder)."""
    stack = load_stack(DEFAULT_STACK)
    for spec in stack["functions"].values():
        spec["handler"] = str((DEFAULT_STACK.parent / spec["handler"]).resolve())
    stack["functions"][BASELINE_FUNCTION] = {
        "lang": stack["functions"]["dashboard"]["lang"],
        "handler": str(Path(__file__).resolve().parent / "dashboard_baseline"),
        "environment": {"BENCH_BASELINE_PAGES": str(pages)},
    }
    path = base / "stack-with-baseline.yml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


def start_stack(base: Path, pages: Path) -> LocalStack:
    """LocalStack takes no stack path: its start() reads stack.yml through runtime.stack_functions, which is pointed
    at the temporary file for the start, so the baseline function gets its own process behind the same gateway hop
    as the dashboard. Only those two run: nothing checks the seeded monitors while they are read."""
    stack_path = stack_with_baseline(base, pages)
    with mock.patch.object(runtime, "stack_functions", lambda: stack_functions(stack_path)):
        return LocalStack(
            env={},
            log_dir=base / "logs",
            gateway_port=free_port(),
            with_connector=False,
            with_cron=False,
            only_functions=["dashboard", BASELINE_FUNCTION],
        ).start()


# --- figures -----------------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Figure:
    label: str
    values: list[float]
    unit: str
    baseline: Figure | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def line(self) -> str:
        ratio = f"   ratio {self.median / self.baseline.median:5.2f}" if self.baseline and self.values else ""
        spread = f"(min {min(self.values):.0f}, max {max(self.values):.0f})" if len(self.values) > 1 else ""
        return f"  {self.label:<46} {self.median:8.1f} {self.unit:<3} {spread:<22}{ratio}"


@dataclass
class ServerTimes:
    label: str
    wall_ms: list[float]
    app_ms: list[float]  # the page's own Server-Timing "app" duration, when it sends one
    bytes: int

    def line(self, baseline: ServerTimes | None) -> str:
        p50, p99 = percentile(self.wall_ms, 50), percentile(self.wall_ms, 99)
        text = f"  {self.label:<30} {self.bytes:>8,} B  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
        if self.app_ms:
            text += f"  (Server-Timing app p50 {percentile(self.app_ms, 50):.1f}, p99 {percentile(self.app_ms, 99):.1f})"
        if baseline:
            text += (
                f"  ratio p50 {p50 / percentile(baseline.wall_ms, 50):.2f}"
                f" p99 {p99 / percentile(baseline.wall_ms, 99):.2f}"
            )
        return text


SERVER_TIMING_APP = re.compile(r"(?:^|,)\s*app;dur=([\d.]+)")


def server_times(client: httpx.Client, label: str, path: str, requests: int) -> ServerTimes:
    """Sequential GETs with the session cookie, after a few to warm pools and caches."""
    for _ in range(5):
        client.get(path).raise_for_status()
    wall, app, size = [], [], 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
        if match := SERVER_TIMING_APP.search(response.headers.get("server-timing", "")):
            app.append(float(match.group(1)))
    return ServerTimes(label, wall, app, size)


# --- the browser -------------------------------------------------------------------------------------


@dataclass
class BrowserFigures:
    list_first_byte: list[float] = field(default_factory=list)
    baseline_list_first_byte: list[float] = field(default_factory=list)
    list_visible: list[float] = field(default_factory=list)
    list_interactive: list[float] = field(default_factory=list)
    search: list[float] = field(default_factory=list)
    detail_chart: list[float] = field(default_factory=list)
    detail_interactive: list[float] = field(default_factory=list)
    baseline_list_visible: list[float] = field(default_factory=list)
    baseline_detail_visible: list[float] = field(default_factory=list)
    heap_mb: dict[str, float] = field(default_factory=dict)


# Timestamps are taken in the page, every animation frame, because Playwright's own waits poll at 100 ms and then
# 500 ms steps once a first check fails, which would round a 300 ms page up to 600. Init scripts run before the
# page's own and are not bound by its Content-Security-Policy.
FRAME_WATCH = """
(() => {
  const bench = { seen: {}, watch: %s, lastInput: null, narrowTo: null, narrowedAt: null };
  window.__bench = bench;
  document.addEventListener("input", () => { bench.lastInput = performance.now(); bench.narrowedAt = null; }, true);
  const shown = (el) => { const box = el.getBoundingClientRect(); return box.width > 0 && box.height > 0; };
  function frame() {
    for (const selector of bench.watch) {
      if (selector in bench.seen) continue;
      const el = document.querySelector(selector);
      if (el && shown(el)) bench.seen[selector] = performance.now();
    }
    if (bench.narrowTo && bench.lastInput !== null && bench.narrowedAt === null
        && document.querySelectorAll(bench.narrowTo[0]).length === bench.narrowTo[1]) {
      bench.narrowedAt = performance.now();
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();
"""


def first_byte(page) -> float:
    """ms from the navigation's start to the response's first byte: gateway plus server time, as the tab saw it."""
    return page.evaluate("performance.getEntriesByType('navigation')[0].responseStart")


def interactive_at(page, visible_ms: float) -> float:
    """Rows (or the chart) visible and the page's scripts wired (DOMContentLoaded, after the deferred script ran):
    the later of the two."""
    page.wait_for_load_state("domcontentloaded")
    loaded = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    return max(visible_ms, loaded)


def timed_navigation(page, url: str, selector: str) -> float:
    """ms from the navigation's start to the first frame in which `selector` has a box on screen."""
    page.goto(url, wait_until="commit")
    page.wait_for_function("s => window.__bench && s in window.__bench.seen", arg=selector, timeout=30_000)
    return page.evaluate("s => window.__bench.seen[s]", selector)


def js_heap_mb(cdp) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 2**20


def sign_in(context, gateway: str, api_key: str) -> None:
    """Through the real form: the label, the button, the redirect to the list."""
    page = context.new_page()
    page.goto(f"{gateway}{BASE}/login")
    page.get_by_label("API key").fill(api_key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    if "/login" in page.url:
        raise SystemExit(f"sign-in did not take in Chromium: still at {page.url}. {JOINED_COOKIES}")
    page.close()


def measure_search(page, term: str, expected: int) -> float:
    """Typing a term into the search box: ms from the last keystroke until the list holds the expected rows. The
    page's debounce (it asks the server once typing pauses) is part of what a user waits for."""
    box = page.get_by_role("searchbox", name="Search")
    box.fill("")
    page.evaluate("narrowTo => { window.__bench.narrowTo = narrowTo; }", [ROW, expected])
    box.press_sequentially(term)
    page.wait_for_function("() => window.__bench.narrowedAt !== null", timeout=30_000)
    return page.evaluate("window.__bench.narrowedAt - window.__bench.lastInput")


def one_round(context, gateway: str, seeded: SeededProject, detail_ok: bool) -> tuple[dict, dict]:
    """One fresh tab: the static copies, the list, a search, the detail page. Returns (times, heaps)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    times, heaps = {}, {}
    times["baseline_list_visible"] = timed_navigation(page, f"{gateway}{BASELINE}/list.html", ROW)
    times["baseline_list_first_byte"] = first_byte(page)
    if detail_ok:
        times["baseline_detail_visible"] = timed_navigation(
            page, f"{gateway}{BASELINE}/detail.html", CHART_POINT
        )
    times["list_visible"] = timed_navigation(page, f"{gateway}{BASE}/", ROW)
    times["list_first_byte"] = first_byte(page)
    times["list_interactive"] = interactive_at(page, times["list_visible"])
    heaps["list"] = js_heap_mb(cdp)
    times["search"] = measure_search(page, seeded.search_term, seeded.search_matches)
    if detail_ok:
        detail_url = f"{gateway}{BASE}/monitors/{seeded.detail_monitor_id}"
        times["detail_chart"] = timed_navigation(page, detail_url, CHART_POINT)
        times["detail_interactive"] = interactive_at(page, times["detail_chart"])
        heaps["detail"] = js_heap_mb(cdp)
    page.close()
    return times, heaps


def browse(gateway: str, seeded: SeededProject, runs: int, detail_ok: bool) -> BrowserFigures:
    from playwright.sync_api import sync_playwright

    figures = BrowserFigures()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(FRAME_WATCH % json.dumps([ROW, CHART_POINT]))
        sign_in(context, gateway, seeded.api_key)
        one_round(
            context, gateway, seeded, detail_ok
        )  # warms Chromium's cache and the functions; not counted
        for _ in range(runs):
            times, heaps = one_round(context, gateway, seeded, detail_ok)
            for name, value in times.items():
                getattr(figures, name).append(value)
            figures.heap_mb.update(heaps)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        timed_navigation(page, f"{gateway}{BASELINE}/list.html", ROW)
        figures.heap_mb["baseline"] = js_heap_mb(cdp)
        browser.close()
    return figures


# --- the baseline pages ------------------------------------------------------------------------------

SCRIPT = re.compile(rb"<script\b[^>]*>.*?</script>", re.S | re.I)


def static_copy(rendered: bytes) -> bytes:
    """The rendered page with its scripts taken out (no live stream, no wiring), padded with a comment back to the
    same byte size: the same markup for Chromium to parse, lay out and paint, and nothing to compute."""
    bare = SCRIPT.sub(b"", rendered)
    padding = len(rendered) - len(bare)
    if padding == 0:
        return bare
    comment_body = max(0, padding - len(b"<!---->"))
    return bare.replace(b"</body>", b"<!--" + b"x" * comment_body + b"--></body>", 1)


def write_baselines(client: httpx.Client, pages: Path, paths: dict[str, str]) -> dict[str, int]:
    sizes = {}
    for name, path in paths.items():
        rendered = client.get(path)
        rendered.raise_for_status()
        copy = static_copy(rendered.content)
        (pages / f"{name}.html").write_bytes(copy)
        sizes[name] = len(rendered.content)
        assert len(copy) == len(rendered.content), (name, len(copy), len(rendered.content))
    return sizes


def session_client(gateway: str, api_key: str) -> httpx.Client:
    """httpx carrying the session cookie, signed in through the same form (the csrf field is double-submit)."""
    client = httpx.Client(base_url=gateway, timeout=60)
    form = client.get(f"{BASE}/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post(f"{BASE}/login", data={"csrf": csrf, "api_key": api_key, "next": ""})
    if answer.status_code not in (302, 303) or "/login" in answer.headers.get("location", ""):
        raise SystemExit(f"sign-in with httpx failed: {answer.status_code} {answer.headers.get('location')}")
    if SESSION_COOKIE not in client.cookies:
        raise SystemExit(
            f"sign-in answered {answer.status_code} but no session cookie came back. {JOINED_COOKIES}"
        )
    return client


# --- the report --------------------------------------------------------------------------------------


def goal(label: str, value: float, limit: float, unit: str) -> str:
    verdict = "met" if value < limit else "NOT met"
    return f"  goal {label} < {limit:g} {unit}: {value:.{0 if unit == 'ms' and value > 10 else 2}f} {unit}, {verdict}"


def report(
    browser: BrowserFigures | None, servers: dict[str, ServerTimes], detail_ok: bool, runs: int
) -> None:
    print(f"\nIn Chromium, medians of {runs} runs (ms from the navigation's start):")
    if browser:
        baseline_list = Figure("static page, list's bytes: rows visible", browser.baseline_list_visible, "ms")
        baseline_first_byte = Figure(
            "static page, list's bytes: first byte", browser.baseline_list_first_byte, "ms"
        )
        rows = [
            baseline_first_byte,
            Figure("list: first byte", browser.list_first_byte, "ms", baseline_first_byte),
            baseline_list,
            Figure("list: first rows visible", browser.list_visible, "ms", baseline_list),
            Figure("list: interactive (rows + scripts wired)", browser.list_interactive, "ms", baseline_list),
            Figure("search narrows (last keystroke → rows)", browser.search, "ms", baseline_list),
        ]
        if detail_ok:
            baseline_detail = Figure(
                "static page, detail's bytes: chart visible", browser.baseline_detail_visible, "ms"
            )
            rows += [
                baseline_detail,
                Figure("detail: chart points visible", browser.detail_chart, "ms", baseline_detail),
                Figure("detail: interactive", browser.detail_interactive, "ms", baseline_detail),
            ]
        for row in rows:
            print(row.line())
        heap = browser.heap_mb
        line = "  JS heap used (after GC): " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in heap.items())
        if "baseline" in heap:
            line += "   ratio " + ", ".join(
                f"{name} {mb / heap['baseline']:.2f}" for name, mb in heap.items() if name != "baseline"
            )
        print(line)
    print("\nServer time through the gateway (httpx, sequential, with the session cookie):")
    for name, times in servers.items():
        baseline_key = "baseline detail" if name == "detail" else "baseline list"
        print(times.line(None if name.startswith("baseline") else servers.get(baseline_key)))
    print("\nGoals:")
    if browser:
        print(
            goal(
                "list interactive",
                statistics.median(browser.list_interactive) / 1000,
                GOAL_INTERACTIVE_S,
                "s",
            )
        )
        if detail_ok:
            print(
                goal(
                    "detail interactive",
                    statistics.median(browser.detail_interactive) / 1000,
                    GOAL_INTERACTIVE_S,
                    "s",
                )
            )
    for name, times in servers.items():
        if not name.startswith("baseline"):
            print(goal(f"server p99, {name}", percentile(times.wall_ms, 99), GOAL_SERVER_P99_MS, "ms"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="server-time requests per page")
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, help="keep the embedded PostgreSQL and its seed here")
    args = parser.parse_args()
    with services(args.data_dir) as base:
        seeded = seed(os.environ["DATABASE_URL"], args.monitors, args.days)
        pages = base / "baseline-pages"
        pages.mkdir(exist_ok=True)
        stack = start_stack(base, pages)
        try:
            run_bench(stack.gateway_url, seeded, pages, args)
        finally:
            stack.stop()


def serve_pages(
    client: httpx.Client, seeded: SeededProject, pages: Path, requests: int
) -> tuple[bool, dict[str, ServerTimes]]:
    """Writes the baseline pages from the rendered ones, then times every page with httpx."""
    detail_path = f"{BASE}/monitors/{seeded.detail_monitor_id}"
    detail_ok = client.get(detail_path).status_code == 200
    if not detail_ok:
        print(f"{detail_path} does not answer 200 yet: the detail steps are skipped.")
    paths = {"list": f"{BASE}/", **({"detail": detail_path} if detail_ok else {})}
    sizes = write_baselines(client, pages, paths)
    print("rendered pages: " + ", ".join(f"{name} {size:,} B" for name, size in sizes.items()))
    targets = {"baseline list": f"{BASELINE}/list.html"}
    if detail_ok:
        targets["baseline detail"] = f"{BASELINE}/detail.html"
    targets |= {
        "list": f"{BASE}/",
        f"list, search '{seeded.search_term}'": f"{BASE}/?search={seeded.search_term}",
    }
    if detail_ok:
        targets["detail"] = detail_path
    return detail_ok, {name: server_times(client, name, path, requests) for name, path in targets.items()}


def run_bench(gateway: str, seeded: SeededProject, pages: Path, args: argparse.Namespace) -> None:
    probe = httpx.get(f"{gateway}{BASE}/login", timeout=30)
    if probe.status_code == 404:
        print(
            f"{BASE}/login answers 404: no dashboard function on this branch yet; the page steps are skipped."
        )
        return
    client = session_client(gateway, seeded.api_key)
    try:
        detail_ok, servers = serve_pages(client, seeded, pages, args.requests)
    finally:
        client.close()
    figures = browse(gateway, seeded, args.runs, detail_ok)
    print(
        f"\n{seeded.monitors:,} monitors seeded {seeded.seeded_at:%Y-%m-%d %H:%M} UTC "
        f"({'reused' if seeded.reused else f'in {seeded.seconds:.0f} s'}): "
        + ", ".join(f"{table} {n:,}" for table, n in seeded.counts.items() if table != "database_bytes")
    )
    report(figures, servers, detail_ok, args.runs)


if __name__ == "__main__":
    main()
