"""Synthetic scripts against the function: each way in is tried for real (secret files, the function's /proc,
another check's browser, internal addresses through the browser) and must fail, with nothing leaking into the
result, the logs or the artifacts. Real Chromium, Postgres, S3 (moto) and loopback servers, as elsewhere."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import subprocess
import threading
import uuid
import zipfile
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.api.requests import ProjectVariableCreate, SyntheticTestCreate
from shared.checks import run_check
from shared.models import CheckJob
from shared.settings import reset_settings_cache
from shared.synthetic import confine, isolation
from shared.synthetic.browser import find_chromium
from shared.synthetic.isolation import Isolation
from shared.synthetic.runner import SandboxLimits, SandboxOptions, run_in_sandbox, start_sandbox
from tests.factories import default_project, stored_synthetic_objects
from tests.servers import LoopbackHttpServer

LANDLOCK_ABI = confine.landlock_abi()
needs_landlock = pytest.mark.skipif(LANDLOCK_ABI < 4, reason="this kernel has no Landlock with network rules")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a separate uid needs the tests to run as root")
# Landlock alone is tried as root that sheds its capabilities (a user namespace): the sandbox then has the
# function's uid, as under a non-root function, so the function's files are refused by Landlock alone.
MECHANISMS = [
    pytest.param(Isolation(switch_uid=True, landlock_abi=0), id="uid", marks=needs_root),
    pytest.param(Isolation(switch_uid=False, landlock_abi=LANDLOCK_ABI), id="landlock", marks=needs_landlock),
    pytest.param(
        Isolation(switch_uid=True, landlock_abi=LANDLOCK_ABI),
        id="uid+landlock",
        marks=[needs_root, needs_landlock],
    ),
]
SECRET_FILE_TEXT = "postgresql://function:FAKE-DB-PASSWORD-7f3a@db/supercheck"
CREDENTIAL_KEY_TEXT = "k1:FAKE-CREDENTIAL-KEY-91c2"


@pytest.fixture
def project_id(clean):
    return default_project(clean)


@pytest.fixture
def mechanism(request, monkeypatch) -> Isolation:
    monkeypatch.setattr(isolation, "available", lambda: request.param)
    return request.param


def create_test(aio, project_id, script: str, variables: dict[str, str] | None = None) -> str:
    from shared.synthetic import store

    for name, value in (variables or {}).items():
        aio.run(store.create_variable(project_id, ProjectVariableCreate(name=name, value=value)))
    body = SyntheticTestCreate(title=f"probe {uuid.uuid4()}", script=script)
    return str(aio.run(store.create_test(project_id, body)).id)


def job_for(test_id: str) -> CheckJob:
    now = datetime.now(UTC)
    return CheckJob(
        run_id=uuid.uuid4(),
        monitor_id=uuid.uuid4(),
        location="us-east",
        type="synthetic_test",
        target=test_id,
        config={"playwrightOptions": {"timeout": 60_000}},
        scheduled_at=now,
        deadline=now,
    )


def everything_recorded(s3, job: CheckJob, outcome, caplog) -> str:
    """The result, every uploaded artifact (the trace's files unpacked) and the log, as one text to search."""
    texts = [json.dumps(outcome.model_dump(mode="json")), caplog.text]
    for name, content in stored_synthetic_objects(s3, job).items():
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                texts += [archive.read(inner).decode("utf-8", "replace") for inner in archive.namelist()]
        else:
            texts.append(content.decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.fixture
def function_files(tmp_path):
    """What the function may read and a script must not: an OpenFaaS secret and `make run`'s credential key,
    readable by the function's user only, and a process of that user (dumpable, unlike the function)."""
    secrets, data = tmp_path / "secrets", tmp_path / ".data"
    for folder, name, text in (
        (secrets, "database-url", SECRET_FILE_TEXT),
        (data, "credential.key", CREDENTIAL_KEY_TEXT),
    ):
        folder.mkdir(mode=0o700)
        (folder / name).write_text(text)
        (folder / name).chmod(0o600)
    decoy = subprocess.Popen(["sleep", "300"], env={"PATH": "/usr/bin:/bin", "DECOY": CREDENTIAL_KEY_TEXT})
    yield f"{secrets / 'database-url'},{data / 'credential.key'},/proc/{decoy.pid}/environ"
    decoy.kill()
    decoy.wait()


READ_FILES = """
import os

async def run(page, context, variables):
    paths = variables["PATHS"].split(",") + [f"/proc/{os.getppid()}/environ", f"/proc/{os.getppid()}/mem"]
    for index, path in enumerate(paths):
        try:
            with open(path, "rb") as handle:
                print(index, "READ", handle.read(200).replace(b"\\0", b" ").decode("utf-8", "replace"))
        except OSError as error:
            print(index, "denied", type(error).__name__)
    for index, path in enumerate(paths[:2]):
        try:
            await page.goto("file://" + path)
            print(index, "BROWSER READ", (await page.content())[:200])
        except Exception as error:
            print(index, "browser denied", str(error).split(" at ")[0][-40:])
"""


@pytest.mark.parametrize("mechanism", MECHANISMS, indirect=True)
def test_a_script_reads_no_secret_file_nor_the_functions_environment(
    aio, s3, project_id, internal_targets, mechanism, function_files, caplog
):
    caplog.set_level(logging.INFO)
    credential_key = os.environ["SC_CREDENTIAL_KEY"]
    test_id = create_test(aio, project_id, READ_FILES, {"PATHS": function_files})
    job = job_for(test_id)
    outcome = aio.run(run_check(job), timeout=180)

    summary = outcome.details["executionSummary"]
    assert outcome.status == "up", outcome
    assert [line.split()[1] for line in summary.splitlines()] == ["denied"] * 5 + ["browser"] * 2, summary
    assert "READ" not in summary
    recorded = everything_recorded(s3, job, outcome, caplog)
    for secret in (SECRET_FILE_TEXT, CREDENTIAL_KEY_TEXT, credential_key, os.environ["DATABASE_URL"]):
        assert secret not in recorded


class Rendezvous:
    """A loopback site two concurrent scripts use to overlap: /mark/<flag> sets a flag, /wait/<flag> says if set."""

    def __init__(self) -> None:
        flags: set[str] = set()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kind, _, flag = self.path.strip("/").partition("/")
                if kind == "mark":
                    flags.add(flag)
                body = b"TOPSECRET-OF-CHECK-A" if kind == "secret" else b"yes" if flag in flags else b"no"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HOLD_A_PAGE_OPEN = """
import asyncio

async def run(page, context, variables):
    await page.goto(variables["BASE_URL"] + "secret")
    poll = await context.new_page()
    await poll.goto(variables["BASE_URL"] + "mark/a-open")
    for _ in range(900):
        if await (await poll.goto(variables["BASE_URL"] + "wait/b-done")).text() == "yes":
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the probing check never finished")
"""
PROBE_THE_OTHER_CHECK = """
import asyncio, glob, json, os, socket

async def run(page, context, variables):
    base = variables["BASE_URL"]
    for _ in range(900):
        if await (await page.goto(base + "wait/a-open")).text() == "yes":
            break
        await asyncio.sleep(0.1)
    found, others = [], 0
    rows = [line.split() for table in ("tcp", "tcp6") for line in open("/proc/net/" + table).readlines()[1:]]
    ports = {int(row[1].rsplit(":", 1)[1], 16) for row in rows if row[3] == "0A"}  # listening
    for port in sorted(ports):  # a CDP endpoint on any listening port?
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:  # also for recv
                conn.sendall(b"GET /json/list HTTP/1.0\\r\\n\\r\\n")
                if b"webSocketDebuggerUrl" in conn.recv(65536):
                    found.append(f"CDP on {port}")
        except OSError:
            pass
    for proc in glob.glob("/proc/[0-9]*"):  # the other sandbox's processes
        try:
            command = open(proc + "/cmdline", "rb").read()
        except OSError:
            continue
        mine = os.getcwd().encode() in command or proc == f"/proc/{os.getpid()}"
        if not mine and (b"sc-synthetic-" in command or b"sandbox.py" in command):
            others += 1
            for name in ("mem", "fd/0"):  # its memory holds the other project's variables and pages
                try:
                    open(proc + "/" + name, "rb").read(4096)
                    found.append(f"{proc}/{name} of {command[:300]!r}")
                except OSError:
                    pass
    for folder in glob.glob("/tmp/sc-synthetic-*"):
        if folder != os.getcwd():
            try:
                found.append(f"{folder}: {os.listdir(folder)}")
            except OSError:
                pass
    await page.goto(base + "mark/b-done")
    print("others", others, "found", json.dumps(found))
"""


@pytest.mark.parametrize("mechanism", MECHANISMS, indirect=True)
def test_a_script_cannot_reach_another_running_checks_browser(
    aio, s3, project_id, internal_targets, mechanism
):
    site = Rendezvous()
    try:
        holder = job_for(create_test(aio, project_id, HOLD_A_PAGE_OPEN, {"BASE_URL": site.url}))
        prober = job_for(create_test(aio, project_id, PROBE_THE_OTHER_CHECK))

        async def both():
            return await asyncio.gather(run_check(holder), run_check(prober))

        held, probed = aio.run(both(), timeout=240)
    finally:
        site.stop()
    assert held.status == "up", held
    assert probed.status == "up", probed
    summary = probed.details["executionSummary"]
    others = int(summary.split()[1])
    assert others >= 1, summary  # the other check's sandbox was there to be probed
    assert summary.endswith("found []"), summary
    assert "TOPSECRET-OF-CHECK-A" not in json.dumps(probed.model_dump(mode="json"))


BROWSE = """
async def run(page, context, variables):
    await page.goto(variables["URL"])
"""


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/", "'127.0.0.1' is 127.0.0.1: loopback"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "'169.254.169.254' is 169.254.169.254: link-local (cloud metadata endpoint)",
        ),
        ("http://localhost:{port}/", "'localhost' resolves to 127.0.0.1: loopback"),
    ],
    ids=["loopback", "cloud-metadata", "name-resolving-to-loopback"],
)
def test_a_journey_to_an_internal_address_fails_with_the_reason(
    aio, s3, project_id, internal_targets_blocked, url, reason
):
    target = LoopbackHttpServer(body=b"INTERNAL-ONLY-PAGE").start()
    try:
        job = job_for(create_test(aio, project_id, BROWSE, {"URL": url.format(port=target.port)}))
        outcome = aio.run(run_check(job), timeout=180)
    finally:
        target.stop()
    assert outcome.status == "down", outcome
    assert outcome.message.startswith(f"Test execution failed: blocked: {reason}"), outcome.message
    assert any(reason in blocked for blocked in outcome.details["blockedRequests"])
    assert target.requests == []
    assert "INTERNAL-ONLY-PAGE" not in json.dumps(outcome.model_dump(mode="json"))


FETCH_AND_WEBSOCKET = """
async def run(page, context, variables):
    await page.set_content("<p>a page with no address of its own</p>")
    print(await page.evaluate('''async url => {
        try { await fetch(url, {mode: "no-cors"}); return "fetched"; } catch (e) { return "fetch failed"; } }''',
        variables["URL"]))
    print(await page.evaluate('''url => new Promise(done => { const ws = new WebSocket(url);
        ws.onopen = () => done("websocket open"); ws.onerror = () => done("websocket failed"); })''',
        variables["URL"].replace("http:", "ws:")))
"""


@pytest.mark.parametrize("internal", ["internal_targets_blocked", "internal_targets"])
def test_fetch_and_websockets_obey_the_same_rules(aio, s3, project_id, request, internal):
    request.getfixturevalue(internal)
    target = LoopbackHttpServer(body=b"INTERNAL-ONLY-DATA").start()
    try:
        job = job_for(create_test(aio, project_id, FETCH_AND_WEBSOCKET, {"URL": target.url}))
        outcome = aio.run(run_check(job), timeout=180)
    finally:
        target.stop()
    summary = outcome.details["executionSummary"]
    if internal == "internal_targets":  # the same journey reaches loopback when internal targets are allowed
        assert summary.startswith("fetched") and len(target.requests) == 2, (summary, target.requests)
        return
    assert summary.splitlines() == ["fetch failed", "websocket failed"], summary
    assert target.requests == []
    assert outcome.status == "down" and "blocked: '127.0.0.1' is 127.0.0.1: loopback" in outcome.message
    assert "INTERNAL-ONLY-DATA" not in json.dumps(outcome.model_dump(mode="json"))


def test_without_isolation_scripts_do_not_run_unless_allowed(
    aio, s3, project_id, internal_targets, monkeypatch
):
    monkeypatch.setattr(isolation, "available", lambda: Isolation(switch_uid=False, landlock_abi=0))
    target = LoopbackHttpServer().start()
    try:
        test_id = create_test(aio, project_id, BROWSE, {"URL": target.url})
        refused = aio.run(run_check(job_for(test_id)), timeout=180)
        assert refused.status == "error"
        assert "no isolation from the function is available" in refused.message
        assert "SYNTHETIC_ALLOW_UNISOLATED=true" in refused.message
        assert target.requests == []

        monkeypatch.setenv("SYNTHETIC_ALLOW_UNISOLATED", "true")
        reset_settings_cache()
        allowed = aio.run(run_check(job_for(test_id)), timeout=180)
        assert allowed.status == "up", allowed
        assert target.requests
    finally:
        target.stop()


def test_chromium_keeps_its_own_sandbox_under_the_sandbox_uid(aio, infra, internal_targets):
    available = isolation.available()
    if confine.user_namespaces_available() is not None:
        pytest.skip("no user namespaces here: Chromium cannot sandbox itself")

    async def go():
        options = SandboxOptions(
            SandboxLimits(cpu_seconds=60, memory_mb=1536), find_chromium(None), available
        )
        sandbox = await start_sandbox(options)
        try:
            return await run_in_sandbox(
                sandbox,
                script="async def run(page, context, variables):\n    await page.set_content('<p>hi</p>')\n",
                variables={},
                timeout_ms=30_000,
                retries=0,
            )
        finally:
            sandbox.discard()

    result = aio.run(go())
    shutil.rmtree(result.folder)
    assert (result.status, result.chromium_sandbox) == ("passed", "on")


LEAVE_A_MARK = """
import builtins

async def run(page, context, variables):
    print("found", getattr(builtins, "left_by_an_earlier_script", None))
    builtins.left_by_an_earlier_script = "project A"
"""


def test_a_sandbox_serves_its_own_project_again_but_never_another(
    aio, s3, clean, project_id, internal_targets
):
    other = clean.sql("insert into projects (name) values ('other') returning id")[0][0]
    mine = create_test(aio, project_id, LEAVE_A_MARK)
    theirs = create_test(aio, other, LEAVE_A_MARK)
    summaries = [
        aio.run(run_check(job_for(test)), timeout=180).details["executionSummary"]
        for test in (mine, mine, theirs)
    ]
    # The same project's next check reused the sandbox (so the check above can fail); the other project's did not.
    assert summaries == ["found None", "found project A", "found None"]
