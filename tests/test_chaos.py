"""Chaos under sustained load: processes killed mid-batch, Redis and Postgres restarted, the scheduler killed
mid-tick, the alert function killed mid-send, monitors deleted while their checks run. Afterwards nothing is
lost, doubled or stuck. CHAOS_SECONDS sets the length (short in CI; the full run by hand:
`CHAOS_SECONDS=300 .venv/bin/python -m pytest -s tests/test_chaos.py`)."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import httpx
import psycopg
import pytest

from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from shared import streams
from tests.factories import default_project
from tests.servers import LoopbackHttpServer, wait_until

CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "24"))
MONITORS = int(os.environ.get("CHAOS_MONITORS", "40"))


@pytest.fixture
def chaos_stack(infra, clean, tmp_path_factory):
    stack = LocalStack(
        env={
            "ALLOW_INTERNAL_TARGETS": "true",
            "CONNECTOR_IDLE_RECLAIM_MS": "2000",
            "RUN_DEADLINE_GRACE_SECONDS": "4",
            "DISPATCH_SWEEP_AFTER_SECONDS": "2",
            "CONNECTOR_MAX_DELIVERIES": "50",
            "SC_ALLOW_ANONYMOUS_LOCAL": "true",
            # a killed sender's claim expires soon, so its alerts go out again within the run
            "ALERT_CLAIM_EXPIRY_SECONDS": "5",
        },
        log_dir=tmp_path_factory.mktemp("chaos-logs"),
        gateway_port=free_port(),
        with_cron=False,
    ).start()
    yield stack
    stack.stop()


def post(url: str, body: bytes = b"", timeout: float = 10) -> None:
    try:
        httpx.post(url, content=body, timeout=timeout)
    except httpx.HTTPError:
        pass  # like the cron-connector: no retry; the next tick catches up


def seed(infra, targets: list[str], provider_id: str) -> None:
    project = default_project(infra)
    alert_config = json.dumps(
        {"enabled": True, "notificationProviders": [provider_id], "failureThreshold": 1}
    )
    for index in range(MONITORS):
        infra.sql(
            """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at, config, alert_config)
               values (%s, %s, 'http_request', %s, 1, now(), '{"timeoutSeconds": 2}', %s)""",
            (project, f"chaos {index}", targets[index % len(targets)], alert_config),
        )


# the chaos itself, then up to 180 s to settle, and the stack's start
@pytest.mark.timeout(CHAOS_SECONDS + 400)
def test_nothing_is_lost_doubled_or_stuck_when_processes_and_servers_die(chaos_stack, infra):
    gateway = chaos_stack.gateway_url
    flappy, steady = LoopbackHttpServer().start(), LoopbackHttpServer().start()
    receiver = LoopbackHttpServer(body=b"{}", delay=0.5).start()  # slow: a kill can land mid-send
    provider = httpx.post(
        f"{gateway}/function/api/notification-providers",
        json={"name": "hook", "type": "webhook", "config": {"url": receiver.url}},
    ).json()
    seed(infra, [flappy.url, steady.url], provider["id"])
    r = infra.redis()
    poison_stream = streams.job_stream("http_request", "eu-central")
    poison_ids = {r.xadd(poison_stream, {"data": "{broken"}), r.xadd(poison_stream, {"data": '{"v": 1}'})}

    stop = threading.Event()

    def load() -> None:
        """Every second makes every monitor due and ticks, as a 1-minute schedule compressed in time."""
        while not stop.is_set():
            try:
                with psycopg.connect(infra.database_url, autocommit=True, connect_timeout=2) as conn:
                    conn.execute("update monitors set next_run_at = now()")
            except psycopg.OperationalError:
                pass
            post(f"{gateway}/function/schedule")
            post(f"{gateway}/function/aggregate")
            flappy.status = random.choice([200, 200, 500])
            stop.wait(1.0)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    step = CHAOS_SECONDS / 8
    actions = [
        ("kill -9 check-http mid-batch", lambda: chaos_stack.kill("check-http")),
        ("kill -9 connector", lambda: chaos_stack.kill("connector")),
        ("restart redis", lambda: infra.redis_server.restart(kill=True)),
        ("restart postgres", lambda: infra.postgres.restart(kill=True)),
        ("kill scheduler mid-tick", lambda: _kill_mid_tick(chaos_stack)),
        ("kill -9 alert mid-send", lambda: _kill_alert_mid_send(chaos_stack, receiver)),
        ("delete monitors under load", lambda: _delete_monitors(gateway, infra, 4)),
    ]
    for _, action in actions:
        time.sleep(step)
        action()
    time.sleep(step)
    stop.set()
    loader.join(timeout=30)
    flappy.status = 200

    def quiescent() -> bool:
        post(f"{gateway}/function/aggregate")  # the deadline sweep, as cron would call it
        open_runs = infra.sql("select count(*) from runs where finalized_at is null")[0][0]
        return open_runs == 0 and _nothing_pending(r)

    wait_until(quiescent, timeout=180, interval=1.0, message="every run finalized and nothing pending")
    time.sleep(2)  # let alert deliveries for the last finalizations finish

    runs, finalized = infra.sql("select count(*), count(finalized_at) from runs")[0]
    assert runs > MONITORS * 2 and runs == finalized, "0 lost runs"
    # A result may still arrive after its run was finalized at the deadline: it is stored, and that is fine.
    unaccounted = infra.sql(
        """select r.id, loc from runs r cross join unnest(r.expected_locations) as loc
           where loc <> all(r.missing_locations)
             and not exists (select 1 from monitor_results m where m.run_id = r.id and m.location = loc)"""
    )
    late = infra.sql(
        """select count(*) from runs r join monitor_results m on m.run_id = r.id
           where m.location = any(r.missing_locations)"""
    )[0][0]
    print(f"runs={runs} late results after their deadline={late}")
    assert unaccounted == [], "each expected location has a result or is recorded missing"
    assert infra.sql("select count(*) - count(distinct (run_id, location)) from monitor_results") == [(0,)]
    sent, cut_off = infra.sql(
        "select count(*) filter (where status = 'sent'), count(*) filter (where status = 'sending') from alert_history"
    )[0]
    received, cut_short = _parsed_bodies(receiver)
    # A deleted monitor's alert history goes with it: count only the alerts of monitors still there.
    remaining = {name for (name,) in infra.sql("select name from monitors")}
    received = [body for body in received if body["monitorName"] in remaining]
    # A sender killed after its request went out sends it again once its claim expires, with the same
    # deliveryKey: a receiver drops that duplicate by its key. No alert may arrive under two keys.
    alert_of_key = {
        body["deliveryKey"]: (body["monitorName"], body["kind"], body["time"]) for body in received
    }
    alerts = list(alert_of_key.values())
    print(
        f"alerts: {len(alerts)} distinct, {len(received) - len(alerts)} redelivered with their key, "
        f"sent={sent} sending={cut_off} cut short={cut_short}"
    )
    assert sent > 0, "alerts went out"
    assert _repeated_alerts(infra, alert_of_key) == [], "0 duplicate alerts"
    assert all(key for key in alert_of_key), "every delivery carries its dedup key"
    # A send whose outcome could not be written (Postgres killed between the POST and its UPDATE) stays
    # 'sending' until its claim expires; then it goes out again, under its key.
    recorded = {
        f"supercheck-{run_id}-{kind}": status
        for run_id, kind, status in infra.sql("select run_id, kind, status from alert_history")
    }
    unrecorded = {key: recorded.get(key, "no row") for key in alert_of_key if recorded.get(key) != "sent"}
    diagnosis = [
        (
            key,
            status,
            infra.sql("select count(*) from runs where id = %s", (key[11:47],)),
            infra.sql(
                "select kind, dispatched_at is not null from alert_events where run_id = %s", (key[11:47],)
            ),
        )
        for key, status in list(unrecorded.items())[:5]
        if status == "no row"
    ]
    assert sent <= len(alerts) <= sent + cut_off, (
        f"every recorded send arrived, and nothing unrecorded did: {list(unrecorded.items())[:10]} {diagnosis}"
    )
    dead = r.xrange(streams.dead_letter_stream(poison_stream))
    assert {fields["id"] for _, fields in dead} == poison_ids
    for stream in r.keys("sc:*:dead"):
        if stream != streams.dead_letter_stream(poison_stream):
            assert r.xlen(stream) == 0, f"unexpected dead letters in {stream}: {r.xrange(stream)}"
    for server in (flappy, steady, receiver):
        server.stop()


def _kill_mid_tick(stack: LocalStack) -> None:
    ticking = threading.Thread(target=post, args=(f"{stack.gateway_url}/function/schedule",), daemon=True)
    ticking.start()
    time.sleep(0.05)
    stack.kill("schedule", signal.SIGKILL)
    ticking.join(timeout=15)
    stack.wait_ready("schedule")


def _parsed_bodies(receiver: LoopbackHttpServer) -> tuple[list[dict], int]:
    """The JSON bodies received, and how many requests were cut short (their sender killed while writing)."""
    bodies = []
    for request in receiver.requests:
        try:
            bodies.append(request.json())
        except ValueError:
            pass
    return bodies, len(receiver.requests) - len(bodies)


def _delete_monitors(gateway: str, infra, count: int) -> None:
    """Through the API, while their checks run: their results are dropped, their bundle-mates' are not."""
    for (monitor_id,) in infra.sql("select id from monitors order by random() limit %s", (count,)):
        httpx.delete(f"{gateway}/function/api/monitors/{monitor_id}", timeout=30).raise_for_status()
        time.sleep(0.3)


def _kill_alert_mid_send(stack: LocalStack, receiver: LoopbackHttpServer) -> None:
    """kill -9 while the receiver holds a request the alert function sent (it answers after its delay)."""
    seen = len(receiver.requests)
    deadline = time.monotonic() + 15
    while len(receiver.requests) == seen and time.monotonic() < deadline:
        time.sleep(0.02)
    stack.kill("alert", signal.SIGKILL)
    stack.wait_ready("alert")


def _nothing_pending(r) -> bool:
    for stream in r.keys("sc:*"):
        if r.type(stream) != "stream" or stream.endswith(":dead"):
            continue
        groups = r.xinfo_groups(stream)
        if groups and (
            groups[0]["pending"]
            or groups[0]["last-delivered-id"] != r.xinfo_stream(stream)["last-generated-id"]
        ):
            return False
    return True


def _repeated_alerts(infra, alert_of_key: dict) -> list:
    """Alerts a monitor's state could not have raised twice, among every alert aggregate decided, in the order of
    their runs: a first failure alert (sequence 1) while the last one is still unrecovered, or a recovery without
    a failure alert since. What arrives is keyed by run and kind, so a second decision is the only way an alert
    could arrive under two keys.

    (Name, kind and time are no identity: a backlog of one monitor's runs finalized in one batch shares its
    `now`, so a failure and its reminder, or a failure, its recovery and the next failure, may carry one time.)"""
    received = {key[11:47] for key in alert_of_key}  # supercheck-<run id>-<kind>
    rows = infra.sql(
        """select m.name, e.kind, coalesce((e.payload->>'sequenceNumber')::int, 1), r.scheduled_at, e.run_id::text
           from alert_events e join runs r on r.id = e.run_id join monitors m on m.id = e.monitor_id
           order by m.name, r.scheduled_at"""
    )
    assert received <= {row[4] for row in rows}, "every alert received was decided by aggregate"
    repeated, open_incident = [], {}
    for name, kind, sequence, scheduled_at, run_id in rows:
        if kind == "failure" and sequence == 1:
            if open_incident.get(name):
                repeated.append((name, kind, scheduled_at, run_id))
            open_incident[name] = True
        elif kind == "recovery":
            if not open_incident.get(name):
                repeated.append((name, kind, scheduled_at, run_id))
            open_incident[name] = False
    return repeated
