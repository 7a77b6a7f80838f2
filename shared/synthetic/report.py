"""Pure pieces of a synthetic run's output: secret masking, steps read from the Playwright trace, the HTML report.
Used by the synthetic check (shared/synthetic/check.py)."""

from __future__ import annotations

import html
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

SECRET_MASK = "****"
OUTPUT_LIMIT = 500
_BINARY_SUFFIXES = (".jpeg", ".jpg", ".png", ".webp", ".gif", ".woff", ".woff2", ".ttf")


def secret_forms(secret: str) -> set[str]:
    """The ways a value shows up in text we produce: as is, JSON-escaped, and URL-encoded (query or path)."""
    return {secret, json.dumps(secret)[1:-1], quote_plus(secret), quote(secret, safe="")} - {""}


def scrub(text: str, secrets: Iterable[str]) -> str:
    forms = sorted(
        {form for secret in secrets if secret for form in secret_forms(secret)}, key=len, reverse=True
    )
    for form in forms:
        text = text.replace(form, SECRET_MASK)
    return text


def scrub_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    forms = sorted(
        {form for secret in secrets if secret for form in secret_forms(secret)}, key=len, reverse=True
    )
    for form in forms:
        data = data.replace(form.encode(), SECRET_MASK.encode())
    return data


def scrub_zip(source: Path, destination: Path, secrets: Iterable[str]) -> None:
    """Rewrites a trace.zip with secrets masked in its text members (actions, logs, DOM snapshots, network)."""
    secrets = [s for s in secrets if s]
    with (
        zipfile.ZipFile(source) as original,
        zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as masked,
    ):
        for member in original.infolist():
            data = original.read(member)
            if secrets and not member.filename.lower().endswith(_BINARY_SUFFIXES):
                data = scrub_bytes(data, secrets)
            masked.writestr(member, data)


def truncate(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """Keeps the end, where failures are reported."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


@dataclass
class Step:
    title: str
    detail: str
    duration_ms: float | None
    error: str | None


_DETAIL_PARAMS = ("url", "selector", "expression", "key", "text", "name", "path")


def _detail(params: dict) -> str:
    for name in _DETAIL_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value if len(value) <= 200 else value[:199] + "…"
    return ""


def steps_from_trace(lines: Iterable[str]) -> list[Step]:
    """The script's Playwright calls, in order, from the trace's before/after events (format v6 and later)."""
    steps: dict[str, tuple[Step, float | None]] = {}
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("type") == "before" and event.get("callId"):
            title = event.get("apiName") or ".".join(
                part for part in (event.get("class"), event.get("method")) if part
            )
            step = Step(
                title=title or "call", detail=_detail(event.get("params") or {}), duration_ms=None, error=None
            )
            steps[event["callId"]] = (step, event.get("startTime"))
        elif event.get("type") == "after" and event.get("callId") in steps:
            step, started = steps[event["callId"]]
            ended = event.get("endTime")
            if isinstance(started, int | float) and isinstance(ended, int | float):
                step.duration_ms = round(ended - started, 1)
            error = event.get("error")
            if isinstance(error, dict):
                error = (error.get("error") or {}).get("message") or error.get("message")
            if error:
                step.error = str(error)
    return [step for step, _ in steps.values()]


def steps_from_trace_zip(path: Path) -> list[Step]:
    try:
        with zipfile.ZipFile(path) as trace:
            names = [name for name in trace.namelist() if name.endswith(".trace")]
            lines = [
                line for name in names for line in trace.read(name).decode("utf-8", "replace").splitlines()
            ]
    except (OSError, zipfile.BadZipFile):
        return []
    return steps_from_trace(lines)


@dataclass
class ReportFacts:
    title: str
    status: str
    error: str | None
    duration_ms: int
    attempts: int
    steps: list[Step]
    console_errors: list[dict]
    failed_requests: list[dict]
    stdout: str
    stderr: str
    artifact_links: dict[str, str]


_STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}.passed{color:#137333}
.failed,.timeout,.error{color:#c5221f}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}td.err{color:#c5221f}"""


def render_report(facts: ReportFacts) -> str:
    """A self-contained HTML page; every value is escaped, since all of it comes from the page under test."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{index}</td><td>{e(step.title)}</td><td>{e(step.detail)}</td>"
        f"<td>{'' if step.duration_ms is None else f'{step.duration_ms:.0f} ms'}</td>"
        f"<td class=err>{e(step.error or '')}</td></tr>"
        for index, step in enumerate(facts.steps, 1)
    )
    console = "".join(
        f"<li>{e(item.get('type', ''))}: {e(item.get('text', ''))}</li>" for item in facts.console_errors
    )
    requests = "".join(
        f"<li>{e(item.get('method', ''))} {e(item.get('url', ''))} → {e(item.get('failure', ''))}</li>"
        for item in facts.failed_requests
    )
    links = " · ".join(f'<a href="{e(url)}">{e(name)}</a>' for name, url in facts.artifact_links.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(facts.title)}: {e(facts.status)}</title>
<style>{_STYLE}</style></head><body>
<h1>{e(facts.title)}</h1>
<p class="{e(facts.status)}"><strong>{e(facts.status.upper())}</strong> in {facts.duration_ms} ms,
{facts.attempts} attempt(s)</p>
{f"<pre>{e(facts.error)}</pre>" if facts.error else ""}
<p>{links}</p>
<h2>Steps</h2><table><tr><th>#</th><th>Call</th><th>Target</th><th>Time</th><th>Error</th></tr>{rows}</table>
<h2>Console errors ({len(facts.console_errors)})</h2><ul>{console}</ul>
<h2>Failed requests ({len(facts.failed_requests)})</h2><ul>{requests}</ul>
<h2>Output</h2><pre>{e(facts.stdout) or "(none)"}</pre><h2>Errors</h2><pre>{e(facts.stderr) or "(none)"}</pre>
</body></html>
"""
