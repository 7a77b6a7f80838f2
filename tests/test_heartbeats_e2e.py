"""Heartbeat monitors through the real local stack: the monitor's pingUrl and its token, every ping URL shape,
refusals, the rate limit, retried pings, overdue and unfinished heartbeats going down and alerting, a real cron
wrapper run with curl."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from tests.factories import default_project
from tests.servers import wait_for_pings_written, wait_until

PERIOD = {"periodSeconds": 60, "graceSeconds": 0}


@pytest.fixture
def api(stack, clean):
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30) as client:
        yield client


def create_heartbeat(api, config: dict | None = None, name: str = "Nightly backup", **alert_config) -> dict:
    body = {"name": name, "type": "heartbeat", "config": config or PERIOD}
    if alert_config:
        body["alertConfig"] = {"enabled": True, **alert_config}
    response = api.post("/api/monitors", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def ping_path(monitor: dict) -> str:
    """The pingUrl's path: its host is SC_PUBLIC_BASE_URL's, this test's gateway listens elsewhere."""
    return urlsplit(monitor["pingUrl"]).path.removeprefix("/function")


def token_of(monitor: dict) -> str:
    return ping_path(monitor).rsplit("/", 1)[1]


def finalized_statuses(infra, monitor_id: str) -> list[str]:
    rows = infra.sql(
        "select status from runs where monitor_id = %s and finalized_at is not null order by scheduled_at",
        (monitor_id,),
    )
    return [row[0] for row in rows]


def wait_for_runs(infra, monitor_id: str, count: int) -> list[str]:
    wait_until(lambda: len(finalized_statuses(infra, monitor_id)) >= count, message=f"{count} finalized runs")
    return finalized_statuses(infra, monitor_id)


def results(infra, monitor_id: str) -> list[tuple]:
    wait_for_pings_written(infra)
    return infra.sql(
        """select status, response_time_ms, message, location from monitor_results
           where monitor_id = %s order by checked_at""",
        (monitor_id,),
    )


def pings(infra, monitor_id: str) -> list[tuple]:
    wait_for_pings_written(infra)
    return infra.sql(
        "select kind, source, exit_status, message from heartbeat_pings where monitor_id = %s order by id",
        (monitor_id,),
    )


def let_time_pass(infra, monitor_id: str, seconds: int) -> None:
    """As if `seconds` had passed: every stored moment of the monitor moves back (the sweep reads the clock)."""
    wait_for_pings_written(infra)
    back = "make_interval(secs => %(s)s)"
    for statement in (
        f"""update heartbeats set alarm_at = alarm_at - {back}, alarm_due = alarm_due - {back},
                last_completed_at = last_completed_at - {back}, open_start_at = open_start_at - {back}
            where monitor_id = %(id)s""",
        f"update runs set scheduled_at = scheduled_at - {back}, deadline = deadline - {back} where monitor_id = %(id)s",
        f"update monitor_results set checked_at = checked_at - {back} where monitor_id = %(id)s",
        f"update monitors set last_applied_run_at = last_applied_run_at - {back} where id = %(id)s",
    ):
        infra.sql(statement, {"s": seconds, "id": monitor_id})


def sweep(api) -> dict:
    """aggregate's cron call, as the cron-connector makes it: an empty unsigned POST."""
    response = api.post("/aggregate", content=b"")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_heartbeat_has_a_ping_url_no_target_and_is_never_scheduled(api, infra):
    monitor = create_heartbeat(api)
    assert monitor["target"] is None and monitor["type"] == "heartbeat"
    assert monitor["pingUrl"].startswith("http://127.0.0.1:8080/function/ping/")
    token = token_of(monitor)
    assert len(token) >= 22, "at least 128 bits of URL-safe base64"
    assert monitor["nextRunAt"] is None
    assert infra.sql("select count(*) from runs where monitor_id = %s", (monitor["id"],))[0][0] == 0
    assert api.post(f"/api/monitors/{monitor['id']}/run").status_code == 400
    assert api.post("/schedule", json={"monitorIds": [monitor["id"]]}).json()["runsCreated"] == 0
    stored = infra.sql("select h::text, m::text from heartbeats h join monitors m on m.id = h.monitor_id")[0]
    assert all(token not in column for column in stored), "the token is stored hashed and encrypted only"
    assert api.get(f"/api/monitors/{monitor['id']}").json()["pingUrl"] == monitor["pingUrl"]


def test_rotating_the_token_retires_the_old_ping_url(api):
    monitor = create_heartbeat(api)
    old = ping_path(monitor)
    rotated = api.post(f"/api/monitors/{monitor['id']}/ping-token/rotate")
    assert rotated.status_code == 200, rotated.text
    new = ping_path(rotated.json())
    assert new != old
    assert api.get(old).status_code == 404
    assert api.get(new).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config": {}}, "config.periodSeconds"),
        ({"config": {"periodSeconds": 30}}, "config.periodSeconds"),
        ({"config": {"cron": "0 2 * *"}}, "config.cron"),
        ({"config": {"cron": "0 2 * * *", "timezone": "Europe/Nowhere"}}, "config.timezone"),
        ({"config": PERIOD, "target": "https://example.net"}, "target"),
        ({"config": PERIOD, "locationConfig": {"locations": ["us-east"]}}, "locationConfig.locations"),
    ],
)
def test_a_bad_heartbeat_is_refused_naming_the_field(api, body, field):
    response = api.post("/api/monitors", json={"name": "hb", "type": "heartbeat", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_other_monitors_still_need_a_target(api):
    response = api.post("/api/monitors", json={"name": "site", "type": "http"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "target"


def test_every_healthchecks_shape_and_method(api, infra):
    monitor = create_heartbeat(api)
    path = ping_path(monitor)
    answers = [
        api.get(path),
        api.head(path),
        api.post(path, content=b"backup done: 3 GB"),
        api.get(f"{path}/start"),
        api.post(f"{path}/log", content=b"halfway"),
        api.get(f"{path}/fail"),
        api.get(f"{path}/0"),
        api.post(f"{path}/3", content=b"disk full"),
    ]
    assert [a.status_code for a in answers] == [200] * 8
    assert answers[0].text == "OK" and answers[1].content == b""
    assert pings(infra, monitor["id"]) == [
        ("success", "healthchecks", None, None),
        ("success", "healthchecks", None, None),
        ("success", "healthchecks", None, "backup done: 3 GB"),
        ("start", "healthchecks", None, None),
        ("log", "healthchecks", None, "halfway"),
        ("fail", "healthchecks", None, None),
        ("success", "healthchecks", 0, None),
        ("fail", "healthchecks", 3, "disk full"),
    ]
    # a run per completion (six), none for the start and the log
    assert wait_for_runs(infra, monitor["id"], 6) == ["up", "up", "up", "down", "up", "down"]
    assert results(infra, monitor["id"])[-1][2] == "Job reported a failure (exit status 3): disk full"
    assert {row[3] for row in results(infra, monitor["id"])} == {"heartbeat"}
    wait_until(lambda: api.get(f"/api/monitors/{monitor['id']}").json()["status"] == "down")


def test_refusals_unknown_token_bad_exit_status_bad_rid(api):
    monitor = create_heartbeat(api)
    path = ping_path(monitor)
    unknown = api.get(f"/ping/{uuid.uuid4().hex}")
    assert (unknown.status_code, unknown.text) == (404, "not found: no check has this ping URL")
    assert api.get("/ping/short").status_code == 404
    assert api.get(f"{path}/256").status_code == 400
    assert api.get(f"{path}/256").text == "exit status must be 0-255"
    assert api.get(f"{path}/-1").status_code == 400
    assert api.get(f"{path}/restart").status_code == 404
    bad_rid = api.get(f"{path}/start", params={"rid": "not-a-uuid"})
    assert bad_rid.status_code == 400 and bad_rid.text.startswith("rid: ")
    assert api.put(path).status_code == 405
    assert token_of(monitor) not in unknown.text + bad_rid.text


def test_the_body_is_kept_up_to_100_kb(api, infra):
    monitor = create_heartbeat(api)
    assert api.post(ping_path(monitor), content=b"x" * 150_000).status_code == 200
    ((_, _, _, message),) = pings(infra, monitor["id"])
    assert len(message) == 100 * 1024


def test_kuma_push_up_and_down(api, infra):
    monitor = create_heartbeat(api)
    push = f"/ping/api/push/{token_of(monitor)}"
    up = api.get(push, params={"status": "up", "msg": "OK", "ping": "42"})
    assert (up.status_code, up.json()) == (200, {"ok": True})
    down = api.get(push, params={"status": "down", "msg": "queue stuck"})
    assert down.status_code == 200
    assert wait_for_runs(infra, monitor["id"], 2) == ["up", "down"]
    assert [(r[0], r[1]) for r in results(infra, monitor["id"])] == [("up", 42), ("down", None)]
    assert pings(infra, monitor["id"])[1] == ("fail", "kuma", None, "queue stuck")
    bad = api.get(push, params={"status": "sideways"})
    assert bad.status_code == 400 and bad.json()["msg"].startswith("status: ")
    unknown = api.get(f"/ping/api/push/{uuid.uuid4().hex}")
    assert (unknown.status_code, unknown.json()["ok"]) == (404, False)


def test_rid_pairs_a_start_with_its_end_and_times_it(api, infra):
    monitor = create_heartbeat(api)
    path = ping_path(monitor)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert api.get(f"{path}/start", params={"rid": first}).status_code == 200
    time.sleep(0.3)
    assert api.get(f"{path}/start", params={"rid": second}).status_code == 200
    assert api.get(f"{path}/0", params={"rid": first}).status_code == 200, "another rid: not timed"
    assert api.get(f"{path}/0", params={"rid": second}).status_code == 200
    wait_for_runs(infra, monitor["id"], 2)
    timings = [row[1] for row in results(infra, monitor["id"])]
    assert timings[0] is None and timings[1] is not None and timings[1] >= 0


def test_a_start_and_its_end_record_the_duration_as_the_response_time(api, infra):
    monitor = create_heartbeat(api)
    path = ping_path(monitor)
    rid = str(uuid.uuid4())
    api.get(f"{path}/start", params={"rid": rid})
    time.sleep(0.3)
    api.get(path, params={"rid": rid})
    wait_for_runs(infra, monitor["id"], 1)
    assert results(infra, monitor["id"])[0][1] >= 300


def test_a_retried_ping_is_counted_once(api, infra):
    monitor = create_heartbeat(api)
    path = ping_path(monitor)
    rid = str(uuid.uuid4())
    answers = [api.get(path, params={"rid": rid}) for _ in range(3)]
    assert [a.text for a in answers] == ["OK", "OK (already counted)", "OK (already counted)"]
    keyed = [api.post(f"{path}/fail", headers={"Idempotency-Key": "job-17"}) for _ in range(2)]
    assert [a.text for a in keyed] == ["OK", "OK (already counted)"]
    assert len(pings(infra, monitor["id"])) == 2
    assert wait_for_runs(infra, monitor["id"], 2) == ["up", "down"]
    time.sleep(0.5)
    assert len(finalized_statuses(infra, monitor["id"])) == 2


def test_pings_are_rate_limited_per_token(api, infra):
    limited, other = create_heartbeat(api), create_heartbeat(api, name="other")
    answers = [api.get(f"{ping_path(limited)}/log").status_code for _ in range(61)]
    assert answers == [200] * 60 + [429]
    assert api.get(f"{ping_path(other)}/log").status_code == 200, "per token"
    assert len(pings(infra, limited["id"])) == 60


def test_an_overdue_heartbeat_goes_down_alerts_and_recovers(api, infra, webhook_receiver):
    provider = api.post(
        "/api/notification-providers",
        json={"name": "hook", "type": "webhook", "config": {"url": webhook_receiver.url}},
    )
    assert provider.status_code == 201, provider.text
    monitor = create_heartbeat(api, notificationProviders=[provider.json()["id"]])
    path = ping_path(monitor)
    assert api.get(path).status_code == 200
    assert wait_for_runs(infra, monitor["id"], 1) == ["up"]
    assert sweep(api)["heartbeatsOverdue"] == 0, "within its period"

    let_time_pass(infra, monitor["id"], 61)
    assert sweep(api)["heartbeatsOverdue"] == 1
    assert sweep(api)["heartbeatsOverdue"] == 0, "written once"
    assert wait_for_runs(infra, monitor["id"], 2) == ["up", "down"]
    assert results(infra, monitor["id"])[-1][2].startswith("No ping by ")
    webhook_receiver.wait_for_requests(1)
    assert webhook_receiver.requests[0].json()["title"] == "Monitor Down - Nightly backup"

    assert api.get(path).status_code == 200
    webhook_receiver.wait_for_requests(2)
    assert webhook_receiver.requests[1].json()["title"] == "Monitor Recovered - Nightly backup"
    assert api.get(f"/api/monitors/{monitor['id']}").json()["status"] == "up"


def test_a_start_without_its_end_goes_down_after_grace(api, infra):
    monitor = create_heartbeat(api, {"periodSeconds": 3600, "graceSeconds": 120})
    path = ping_path(monitor)
    assert api.get(f"{path}/start").status_code == 200
    assert sweep(api)["heartbeatsOverdue"] == 0
    let_time_pass(infra, monitor["id"], 121)
    assert sweep(api)["heartbeatsOverdue"] == 1
    assert wait_for_runs(infra, monitor["id"], 1) == ["down"]
    assert "not ended within the 2m grace period" in results(infra, monitor["id"])[0][2]
    assert infra.sql("select open_start_at from heartbeats")[0][0] is None


def test_a_fail_ping_is_down_at_once(api, infra):
    monitor = create_heartbeat(api)
    assert api.post(f"{ping_path(monitor)}/fail", content=b"backup failed").status_code == 200
    assert wait_for_runs(infra, monitor["id"], 1) == ["down"]
    wait_until(lambda: api.get(f"/api/monitors/{monitor['id']}").json()["status"] == "down")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize(("job", "statuses", "exit_status"), [("true", ["up"], 0), ("exit 3", ["down"], 3)])
def test_a_cron_wrapper_with_curl_reports_the_job_and_its_exit_status(
    stack, api, infra, job, statuses, exit_status
):
    monitor = create_heartbeat(api)
    url = f"{stack.gateway_url}/function{ping_path(monitor)}"
    wrapper = f'curl -fsS -m 10 --retry 5 -o /dev/null "{url}/start"; ( {job} ); curl -fsS -m 10 --retry 5 "{url}/$?"'
    finished = subprocess.run(["sh", "-c", wrapper], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == "OK"
    assert wait_for_runs(infra, monitor["id"], 1) == statuses
    assert [row[:3] for row in pings(infra, monitor["id"])] == [
        ("start", "healthchecks", None),
        ("success" if exit_status == 0 else "fail", "healthchecks", exit_status),
    ]
    assert results(infra, monitor["id"])[0][1] is not None, "start to end: the response time"


def test_no_ping_token_reaches_any_log_of_the_stack(stack, api, infra):
    monitor = create_heartbeat(api)
    token, path = token_of(monitor), ping_path(monitor)
    for suffix in ("", "/start", "/fail", "/256", "/restart", "/log"):
        api.post(path + suffix, content=b"some output")
    api.get(f"/ping/api/push/{token}", params={"status": "sideways"})
    rotated = api.post(f"/api/monitors/{monitor['id']}/ping-token/rotate").json()
    api.get(path)  # the retired token: 404
    wait_for_runs(infra, monitor["id"], 2)
    logs = {log.name: log.read_text(errors="replace") for log in stack.log_dir.glob("*.log")}
    assert logs, "the stack writes its logs there"
    for secret in (token, token_of(rotated)):
        assert not [name for name, text in logs.items() if secret in text]


def test_the_api_lists_a_heartbeats_pings_newest_first_with_their_messages(api, infra):
    monitor = create_heartbeat(api)
    path = ping_path(monitor)
    api.get(f"{path}/start")
    api.post(f"{path}/2", content=b"rsync: connection refused")
    wait_for_pings_written(infra)
    page = api.get(f"/api/monitors/{monitor['id']}/pings", params={"limit": 1})
    assert page.status_code == 200, page.text
    (latest,) = page.json()["data"]
    assert (latest["kind"], latest["exitStatus"], latest["message"]) == (
        "fail",
        2,
        "rsync: connection refused",
    )
    assert latest["runId"] is not None and latest["durationMs"] is not None
    assert page.json()["pagination"]["total"] == 2
    second = api.get(f"/api/monitors/{monitor['id']}/pings", params={"limit": 1, "page": 2}).json()["data"]
    assert [(p["kind"], p["runId"]) for p in second] == [("start", None)]
    assert api.get(f"/api/monitors/{uuid.uuid4()}/pings").status_code == 404


def test_a_heartbeat_down_in_a_maintenance_window_is_recorded_as_suppressed(api, infra, webhook_receiver):
    provider = api.post(
        "/api/notification-providers",
        json={"name": "hook", "type": "webhook", "config": {"url": webhook_receiver.url}},
    ).json()
    now = datetime.now(UTC)
    infra.sql(
        """insert into maintenance_windows (project_id, name, starts_at, ends_at)
           values (%s, 'backup server swap', %s, %s)""",
        (default_project(infra), now - timedelta(minutes=5), now + timedelta(hours=1)),
    )
    monitor = create_heartbeat(api, notificationProviders=[provider["id"]])
    assert api.get(f"{ping_path(monitor)}/fail").status_code == 200
    wait_until(
        lambda: (
            infra.sql("select status, reason from alert_history")
            == [("suppressed", "maintenance window 'backup server swap'")]
        ),
        message="a suppressed failure alert",
    )
    assert webhook_receiver.requests == []
