"""A real Prometheus scrapes the metrics function of the real local stack every second: monitor state reaches PromQL,
promtool accepts the exposition, credentials never reach it, and a scrape without a valid token is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import bearer, make_project
from tests.prometheus_server import (
    METRICS_PATH,
    PrometheusServer,
    ScrapeTarget,
    promtool,
    running_prometheus,
    values,
)
from tests.promql import (
    ALERT_RULES,
    metric_names,
    row_expressions,
    shipped_expressions,
    with_grafana_variables,
)
from tests.servers import wait_until

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
SECRET_IN_USERINFO = "s3cretTOKENuserinfo"
SECRET_IN_QUERY = "s3cretTOKENquery"
SECRET_IN_AUTH = "s3cretTOKENbearer"
SECRETS = (SECRET_IN_USERINFO, SECRET_IN_QUERY, SECRET_IN_AUTH)


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory) -> Iterator[PrometheusServer]:
    """Scrapes the stack as an operator does: the metrics-token, every project and the pipeline."""
    target = ScrapeTarget(stack.gateway_url, stack.metrics_token)
    workdir = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(workdir, target, rule_files=[ALERT_RULES]) as server:
        yield server


@pytest.fixture
def api(stack, clean) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{stack.gateway_url}/function", timeout=30) as client:
        yield client


def scrape(stack, token: str | None, accept: str = "") -> httpx.Response:
    headers = {"Accept": accept, **(bearer(token) if token is not None else {})}
    return httpx.get(f"{stack.gateway_url}{METRICS_PATH}", headers=headers, timeout=30)


def create_monitor(api: httpx.Client, target: str, headers: dict | None = None, **extra) -> dict:
    body = {"name": "Loopback", "type": "http", "target": target, "frequencyMinutes": 5, **extra}
    response = api.post("/api/monitors", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()


def status_of(api: httpx.Client, monitor_id: str, headers: dict | None = None) -> str:
    return api.get(f"/api/monitors/{monitor_id}", headers=headers or {}).json()["status"]


def run_now(api: httpx.Client, monitor_id: str) -> None:
    response = api.post("/schedule", json={"monitorIds": [monitor_id]})
    assert response.status_code == 200, response.text


def test_supercheck_monitor_up_goes_from_1_to_0_in_promql_when_the_target_fails(api, prometheus, http_target):
    monitor = create_monitor(api, http_target.url, name="Flipping")
    selector = f'supercheck_monitor_up{{monitor_id="{monitor["id"]}"}}'

    up = prometheus.wait_for(
        selector, lambda result: values(result) == [1.0], message="the monitor up in PromQL"
    )
    labels = up[0]["metric"]
    # the monitor's names, the scrape's own, and no target
    assert set(labels) == {"__name__", "monitor_id", "monitor_name", "type", "project", "instance", "job"}
    assert (labels["monitor_name"], labels["type"], labels["job"]) == (
        "Flipping",
        "http_request",
        "supercheck",
    )

    http_target.status = 500
    run_now(api, monitor["id"])
    prometheus.wait_for(
        selector, lambda result: values(result) == [0.0], message="the monitor down in PromQL"
    )
    # Prometheus kept both states: the flip is in its history, not only in the last sample
    assert values(prometheus.query(f"max_over_time({selector}[10m])")) == [1.0]
    assert values(prometheus.query(f"min_over_time({selector}[10m])")) == [0.0]
    down = prometheus.query(
        f'supercheck_monitor_status{{monitor_id="{monitor["id"]}", supercheck_monitor_status="down"}}'
    )
    assert values(down) == [1.0]
    # the shipped rule picks the real series up: pending for its five minutes (docs/prometheus/alerts.yml)
    prometheus.wait_for(
        f'ALERTS{{alertname="SupercheckMonitorDown", monitor_id="{monitor["id"]}", alertstate="pending"}}',
        bool,
        message="SupercheckMonitorDown pending",
    )


def test_promtool_accepts_the_text_exposition_and_openmetrics_ends_with_eof(
    api, prometheus, http_target, stack
):
    monitor = create_monitor(api, http_target.url, name="Exposed")
    wait_until(lambda: status_of(api, monitor["id"]) == "up", message="the first run")
    prometheus.wait_for(
        'up{job="supercheck"}', lambda result: values(result) == [1.0], message="a good scrape"
    )
    prometheus.wait_for(
        f'supercheck_monitor_response_time_seconds{{monitor_id="{monitor["id"]}"}}',
        lambda result: len(result) == 3,
        message="a response time per location",
    )

    text = scrape(stack, stack.metrics_token)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert f'monitor_id="{monitor["id"]}"' in text.text
    checked = promtool("check", "metrics", stdin=text.content)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()

    openmetrics = scrape(stack, stack.metrics_token, accept=OPENMETRICS)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    # the strict OpenMetrics parser (it raises on any deviation, a missing # EOF included)
    names = {family.name for family in openmetrics_families(openmetrics.text)}
    assert {"supercheck_monitor_up", "supercheck_monitor_status", "supercheck_monitor_checks"} <= names


def test_credentials_in_a_monitor_never_reach_the_exposition_or_prometheus(
    api, prometheus, http_target, stack, aio, infra
):
    key = make_project(aio, "Secretive project")
    with_userinfo = f"http://ops:{SECRET_IN_USERINFO}@127.0.0.1:{http_target.port}/?token={SECRET_IN_QUERY}"
    refused = api.post(
        "/api/monitors",
        json={"name": "Secretive", "type": "http", "target": with_userinfo},
        headers=bearer(key),
    )
    assert refused.status_code == 400 and SECRET_IN_USERINFO not in refused.text
    monitor = create_monitor(
        api,
        f"http://127.0.0.1:{http_target.port}/?token={SECRET_IN_QUERY}",
        headers=bearer(key),
        name="Secretive",
        config={"auth": {"type": "bearer", "token": SECRET_IN_AUTH}},
    )
    wait_until(lambda: status_of(api, monitor["id"], bearer(key)) == "up", message="the first run")
    # the check really used them, so they are stored (sealed) and could leak
    assert any(SECRET_IN_AUTH in request.headers.get("Authorization", "") for request in http_target.requests)
    assert any(SECRET_IN_QUERY in request.path for request in http_target.requests)
    # a row from before the API refused credentials in URLs (or written by hand) holds one in the target
    infra.sql("update monitors set target = %s where id = %s", (with_userinfo, monitor["id"]))

    for token in (stack.metrics_token, key):
        for accept in ("", OPENMETRICS):
            body = scrape(stack, token, accept).text
            assert 'monitor_name="Secretive"' in body
            assert [secret for secret in SECRETS if secret in body] == [], (token == key, accept)
            assert f"127.0.0.1:{http_target.port}" not in body

    stored = prometheus.wait_for(
        f'{{__name__=~"supercheck_.+", monitor_id="{monitor["id"]}"}}',
        lambda result: any(series["metric"]["__name__"] == "supercheck_monitor_up" for series in result),
        message="the monitor's series in Prometheus",
    )
    kept = json.dumps([series["metric"] for series in stored])
    assert [secret for secret in SECRETS if secret in kept] == []


def test_a_scrape_without_a_valid_token_is_refused(stack):
    assert scrape(stack, None).status_code == 401
    assert scrape(stack, "not-a-key-nor-the-metrics-token").status_code == 401
    for header in ("Bearer", f"Basic {stack.metrics_token}"):  # no token; the right token, the wrong scheme
        refused = httpx.get(
            f"{stack.gateway_url}{METRICS_PATH}", headers={"Authorization": header}, timeout=30
        )
        assert refused.status_code == 401, header
    assert scrape(stack, stack.metrics_token).status_code == 200


def test_prometheus_with_a_wrong_token_sees_the_target_down_with_a_401(stack, tmp_path_factory):
    """What the SupercheckScrapeFailing alert (up == 0) stands on, and what the operator then reads."""
    target = ScrapeTarget(stack.gateway_url, "a-revoked-token")
    with running_prometheus(tmp_path_factory.mktemp("prometheus-wrong-token"), target) as server:
        server.wait_for(
            'up{job="supercheck"}', lambda result: values(result) == [0.0], message="a failed scrape"
        )
        assert "401" in server.describe_targets()


def exposed_sample_names(text: str) -> set[str]:
    """Every sample name a family of the exposition may carry, declared families with no samples yet included."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "stateset": ("",)}
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in suffixes.get(family.type, ("",))
    }


# Panels whose data this module does not make: a TLS target, settled rollups, an alert sent.
PANELS_NEEDING_OTHER_DATA = {"Certificate expiry", "Uptime (30 days)", "Alerts by kind and outcome"}


def test_the_dashboards_monitor_panels_show_a_monitor_of_the_real_stack(api, prometheus, http_target):
    """Their label filters and functions fit what Prometheus really stores, beyond the names alone."""
    monitor = create_monitor(api, http_target.url, name="Dashboarded")
    wait_until(lambda: status_of(api, monitor["id"]) == "up", message="the first run")
    run_now(api, monitor["id"])  # a second run, so the rate of checks has samples apart
    panels = row_expressions("Fleet overview") + row_expressions("Per monitor")
    chosen = [(title, expr) for title, expr in panels if title not in PANELS_NEEDING_OTHER_DATA]
    assert len(chosen) >= 8
    for title, expr in chosen:
        shown = with_grafana_variables(expr, project=".*", monitor="Dashboarded")
        prometheus.wait_for(shown, bool, message=f"panel {title!r}: {shown}")


def test_every_metric_the_dashboard_and_the_alerts_read_is_exposed(api, stack, http_target):
    """So no panel stays empty and no alert stays silent for a name the function does not have."""
    create_monitor(api, http_target.url, name="Exposed")
    exposed = exposed_sample_names(scrape(stack, stack.metrics_token).text) | {"up"}  # up: Prometheus' own
    read = {(where, name) for where, expr in shipped_expressions() for name in metric_names(expr)}
    missing = sorted((where, name) for where, name in read if name not in exposed)
    assert not missing, f"read by the dashboard or the alerts but not exposed: {missing}"


# Pipeline panels whose data this module does not make: a run past its deadline, an alert sent, a cleanup run.
PIPELINE_PANELS_NEEDING_OTHER_DATA = {"Missing locations", "Alert deliveries", "Rows deleted by cleanup"}


def test_the_dashboards_pipeline_panels_show_the_real_stack_at_work(api, prometheus, http_target):
    """Checks ran, so the schedule lag, check duration, streams, connector, heartbeat, Redis and database panels
    all have series in the real Prometheus (with the operator token's scrape)."""
    monitor = create_monitor(api, http_target.url, name="Pipelined")
    wait_until(lambda: status_of(api, monitor["id"]) == "up", message="the first run")
    run_now(api, monitor["id"])
    chosen = [
        (title, expr)
        for title, expr in row_expressions("Pipeline health")
        if title not in PIPELINE_PANELS_NEEDING_OTHER_DATA
    ]
    assert len(chosen) >= 15
    for title, expr in chosen:
        shown = with_grafana_variables(expr)
        prometheus.wait_for(shown, bool, message=f"panel {title!r}: {shown}")


def test_the_alert_rules_evaluate_without_error_on_the_real_exposition(api, prometheus, http_target):
    create_monitor(api, http_target.url, name="Alerted")
    wait_until(
        lambda: all(rule["health"] != "unknown" for rule in prometheus.rules()),
        message="every rule evaluated once",
    )
    assert len(prometheus.rules()) >= 11
    broken = {rule["name"]: rule.get("lastError") for rule in prometheus.rules() if rule["health"] != "ok"}
    assert broken == {}
