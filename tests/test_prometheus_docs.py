"""The Prometheus alert rules and the Grafana dashboard that ship in docs/: promtool accepts and unit-tests the rules,
and every PromQL expression in either parses (a real Prometheus is the parser) and names only metrics we expose."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from tests.prometheus_server import PrometheusQueryError, PrometheusServer, promtool, running_prometheus
from tests.promql import (
    ALERT_RULES,
    ROOT,
    alert_rules,
    dashboard,
    dashboard_panels,
    metric_names,
    panel_expressions,
    shipped_expressions,
    with_grafana_variables,
)

ALERT_RULE_TESTS = ROOT / "tests" / "prometheus" / "alerts_test.yml"

# The sample names issue 19 gives the exposition (and the metrics function adds: regional health, render time) (a counter's samples end in _total, a histogram's in
# _bucket/_sum/_count); a panel or rule naming anything else would show nothing.
_HISTOGRAMS = ("supercheck_schedule_lag_seconds", "supercheck_check_duration_seconds")
KNOWN_METRICS = {
    "up",  # Prometheus' own, per scrape target
    "supercheck_monitor_up",
    "supercheck_monitor_status",
    "supercheck_monitor_response_time_seconds",
    "supercheck_monitor_phase_seconds",
    "supercheck_monitor_checks_total",
    "supercheck_monitor_cert_expiry_timestamp_seconds",
    "supercheck_monitor_uptime_ratio",
    "supercheck_monitor_last_check_timestamp_seconds",
    "supercheck_monitor_consecutive_failures",
    "supercheck_monitor_alerts_total",
    "supercheck_schedule_runs_total",
    "supercheck_schedule_ticks_total",
    "supercheck_stream_length",
    "supercheck_stream_pending",
    "supercheck_stream_lag",
    "supercheck_stream_lag_seconds",
    "supercheck_stream_dead_letters",
    "supercheck_redis_up",
    "supercheck_connector_deliveries_total",
    "supercheck_connector_heartbeat_age_seconds",
    "supercheck_connector_heartbeat_present",
    "supercheck_connector_heartbeat_interval_seconds",
    "supercheck_connector_ok",
    "supercheck_check_function_up",
    "supercheck_runs_finalized_total",
    "supercheck_run_missing_locations_total",
    "supercheck_alert_deliveries_total",
    "supercheck_cleanup_deleted_rows_total",
    "supercheck_db_connections",
    "supercheck_db_max_connections",
    "supercheck_metrics_render_seconds",
    *(f"{name}_{part}" for name in _HISTOGRAMS for part in ("bucket", "sum", "count")),
}


@pytest.mark.parametrize(
    "expr, names",
    [
        ("up == 0", {"up"}),
        (
            'supercheck_monitor_up{project=~"$project", monitor_name="by (x) rate"} == 0',
            {"supercheck_monitor_up"},
        ),
        (
            "histogram_quantile(0.99, sum by (le, type) (rate(supercheck_check_duration_seconds_bucket[5m]))) > 30",
            {"supercheck_check_duration_seconds_bucket"},
        ),
        ("supercheck_stream_lag > 100 and deriv(supercheck_stream_lag[10m]) > 0", {"supercheck_stream_lag"}),
        ("(a_timestamp - time()) / 86400 < 1e3", {"a_timestamp"}),
        ("sum without (instance) (x_total) / on (job) group_left (region) y", {"x_total", "y"}),
        ("a / ignoring (stage) group_left sum(b)", {"a", "b"}),
        ("count(a == 1) or vector(0)", {"a"}),
    ],
)
def test_metric_names_are_found_in_any_expression(expr, names):
    assert metric_names(expr) == names


def test_grafana_variables_become_values_prometheus_parses():
    assert (
        with_grafana_variables('rate(x{project=~"$project", monitor_name=~"${monitor}"}[$__rate_interval])')
        == 'rate(x{project=~"x", monitor_name=~"x"}[1m])'
    )


# ---- alert rules


def test_promtool_accepts_the_alert_rules():
    checked = promtool("check", "rules", str(ALERT_RULES))
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_the_alert_rules_fire_as_their_unit_tests_say():
    tested = promtool("test", "rules", str(ALERT_RULE_TESTS))
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()


def test_the_rules_cover_what_the_issue_asks_to_alert_on():
    expressions = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert {
        "SupercheckMonitorDown",
        "SupercheckCertificateExpiringSoon",
        "SupercheckScheduleLagHigh",
        "SupercheckStreamBacklogGrowing",
        "SupercheckConnectorHeartbeatStale",
        "SupercheckConnectorHeartbeatMissing",
        "SupercheckDeadLettersAppearing",
        "SupercheckScrapeFailing",
    } <= set(expressions)


def test_every_alert_says_what_is_wrong_and_where():
    for rule in alert_rules():
        annotations = rule.get("annotations", {})
        assert {"summary", "description"} <= set(annotations), rule["alert"]
        assert "{{ $labels." in annotations["summary"], f"{rule['alert']}: the summary names no label"


def test_alert_rules_use_only_metrics_we_expose():
    unknown = {rule["alert"]: metric_names(rule["expr"]) - KNOWN_METRICS for rule in alert_rules()}
    assert {alert: names for alert, names in unknown.items() if names} == {}


def readme_scrape_config() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Metrics (Prometheus)") :]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Metrics section shows a prometheus.yml"
    return match.group(1)


def test_the_readme_scrape_config_is_one_promtool_accepts(tmp_path):
    config = yaml.safe_load(readme_scrape_config())
    job = config["scrape_configs"][0]
    assert (job["job_name"], job["metrics_path"]) == ("supercheck", "/function/metrics")
    # promtool opens the files a config names: the token file and the rules, here beside the config
    token_file = tmp_path / "supercheck-token"
    token_file.write_text("sck_example")
    job["authorization"]["credentials_file"] = str(token_file)
    config["rule_files"] = [str(ALERT_RULES)]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", str(config_path))
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


# ---- Grafana dashboard


def test_the_dashboard_imports_with_a_prometheus_data_source_input():
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert [(item["name"], item["pluginId"]) for item in board["__inputs"]] == [
        ("DS_PROMETHEUS", "prometheus")
    ]
    for panel in dashboard_panels():
        sources = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
        assert all(source == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for source in sources), panel[
            "title"
        ]


def test_the_dashboard_filters_by_project_and_monitor():
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}
    assert set(variables) == {"project", "monitor"}
    assert variables["project"]["query"]["query"] == "label_values(supercheck_monitor_up, project)"
    assert variables["monitor"]["query"]["query"].startswith("label_values(supercheck_monitor_up{")
    assert variables["monitor"]["query"]["query"].endswith(", monitor_name)")


def test_the_dashboard_has_fleet_monitor_and_pipeline_rows():
    rows = [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert rows == ["Fleet overview", "Per monitor", "Pipeline health"]


def test_every_panel_has_a_unique_id_and_a_query():
    panels = dashboard_panels()
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["targets"] and all(target["expr"] for target in panel["targets"]) for panel in panels)


def test_every_panel_queries_only_metrics_we_expose():
    unknown = {(title, expr): metric_names(expr) - KNOWN_METRICS for title, expr in panel_expressions()}
    assert {key: names for key, names in unknown.items() if names} == {}


def test_the_dashboard_shows_every_metric_the_issue_names():
    shown = set().union(*(metric_names(expr) for _, expr in panel_expressions()))
    # _sum and _count are there for other tools; a dashboard of quantiles reads the buckets
    expected = {name for name in KNOWN_METRICS if not name.endswith(("_sum", "_count"))} - {"up"}
    assert expected - shown == set()


@pytest.fixture(scope="module")
def parser(tmp_path_factory) -> Iterator[PrometheusServer]:
    """A Prometheus with nothing to scrape: its query API parses each expression (a syntax error is a 400)."""
    with running_prometheus(tmp_path_factory.mktemp("prometheus-parser")) as server:
        yield server


def test_the_parser_refuses_a_broken_expression(parser):
    with pytest.raises(PrometheusQueryError) as refused:
        parser.query("sum by (le) (rate(supercheck_schedule_lag_seconds_bucket[5m])")
    assert refused.value.status_code == 400


def test_every_dashboard_and_alert_expression_parses(parser):
    expressions = shipped_expressions()
    variables = [
        (variable["name"], variable["query"]["query"]) for variable in dashboard()["templating"]["list"]
    ]
    refused = {}
    for title, expr in expressions + [(name, _label_values_selector(query)) for name, query in variables]:
        try:
            parser.query(with_grafana_variables(expr))
        except PrometheusQueryError as error:
            refused[title] = error.error
    assert refused == {}


def _label_values_selector(query: str) -> str:
    """label_values(selector, label) is Grafana's, not PromQL: its selector part is what Prometheus must parse."""
    match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
    assert match, query
    return match.group(1)
