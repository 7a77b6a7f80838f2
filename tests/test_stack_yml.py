"""stack.yml checked against faas-cli's rules and OpenFaaS CE's limits, plus the region files and deploy doc."""

from __future__ import annotations

import fnmatch
import importlib.util
import inspect
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from croniter import croniter
from pydantic import ValidationError

from openfaas.connector.connector import ConnectorConfig
from openfaas.local.runtime import LocalStack
from openfaas.local.services import free_port
from openfaas.local.stack import DEFAULT_STACK, PROJECT_ROOT, load_stack
from shared.checks import CHECK_TYPES, time_allowed
from shared.models import CheckJob
from shared.pipeline.check import REPLY_MARGIN_SECONDS
from shared.rules.retention import RetentionConfig
from shared.settings import Settings
from tests.factories import a_job

DOCS = PROJECT_ROOT / "docs" / "deploy.md"
REGIONS_DIR = PROJECT_ROOT / "openfaas" / "regions"
RAW_STACK = yaml.safe_load(DEFAULT_STACK.read_text())
FUNCTIONS: dict[str, dict] = RAW_STACK["functions"]
NAMES = sorted(FUNCTIONS)

# Kubernetes object names, which faas-cli and faas-netes require of a function name (RFC 1123 label).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
GO_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
ENV_REFERENCE = re.compile(r"\$\{(\w+)(:-[^}]*)?\}")
WATCHDOG_SETTINGS = {"read_timeout", "write_timeout", "exec_timeout"}
# The same under `make run` as deployed: the local runtime runs stack.yml's cron, and whoever ticks schedule by
# hand (tests, benchmarks) sets it to 0 for one tick per call.
CRON_SETTINGS = {"SCHEDULE_WINDOW_SECONDS"}
EVERY_FUNCTION_SECRETS = {"database-url", "redis-url"}
# Keyless functions nobody calls signed (ARCHITECTURE: public functions expose only what a project published).
PUBLIC_FUNCTIONS = {"status"}
# Functions that neither verify signed deliveries nor sign calls: they hold no internal-token.
UNSIGNED_FUNCTIONS = PUBLIC_FUNCTIONS | {"metrics"}
OPENFAAS_CE_MAX_FUNCTIONS = 15
OPENFAAS_CE_MAX_REPLICAS = 5
# what differs between installs: where to deploy, which images, and the settings every region must agree on
REGION_SPECIFIC = {
    "OPENFAAS_URL",
    "REGISTRY",
    "TAG",
    "SC_LOCATIONS",
    "SC_PUBLIC_BASE_URL",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
}


def seconds(duration: str) -> float:
    match = GO_DURATION.match(str(duration))
    assert match, f"'{duration}' is not a Go duration such as 30s or 5m"
    value, unit = int(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip() and value == value.strip(), (
                f"{path.name}: '{line}' is not KEY=value"
            )
            assert not value.startswith(("'", '"')), (
                f"{path.name}: {key}: docker and kubectl keep quotes literally"
            )
            values[key] = value
    return values


REGIONS = {path.stem: read_env_file(path) for path in sorted(REGIONS_DIR.glob("*.env"))}


def test_version_and_provider_are_what_faas_cli_accepts():
    assert RAW_STACK["version"] == "1.0"
    assert RAW_STACK["provider"]["name"] == "openfaas"
    assert RAW_STACK["provider"]["gateway"].startswith("${OPENFAAS_URL")


def test_the_stack_stays_within_openfaas_ce():
    assert 0 < len(FUNCTIONS) <= OPENFAAS_CE_MAX_FUNCTIONS


@pytest.mark.parametrize("name", NAMES)
def test_function_names_are_dns_labels(name):
    assert DNS_LABEL.match(name), f"{name}: faas-cli needs a DNS-1123 label (a-z, 0-9, '-', at most 63)"


@pytest.mark.parametrize("name", NAMES)
def test_each_handler_folder_exists_with_an_async_handle(name):
    handler = (PROJECT_ROOT / FUNCTIONS[name]["handler"]).resolve()
    assert handler.parent == PROJECT_ROOT / "functions", f"{name}: handlers live in functions/"
    assert handler.name == name.replace("-", "_"), (
        f"{name}: folder {handler.name} (ARCHITECTURE: check-http -> check_http)"
    )
    assert (handler / "main.py").is_file(), f"{name}: {handler}/main.py is missing"
    spec = importlib.util.spec_from_file_location(f"handler_{handler.name}", handler / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert inspect.iscoroutinefunction(getattr(module, "handle", None)), f"{name}: no async handle"
    assert not {"build", "template"} & {p.name for p in handler.iterdir()}, "faas-cli skips these names"


@pytest.mark.parametrize("name", NAMES)
def test_each_function_template_exists_where_faas_cli_looks(name):
    lang = FUNCTIONS[name]["lang"]
    template = PROJECT_ROOT / "template" / lang  # faas-cli: ./template/<lang>, relative to the stack file
    assert (template / "template.yml").is_file() and (template / "Dockerfile").is_file(), (
        f"{name}: no template {lang}"
    )
    assert yaml.safe_load((template / "template.yml").read_text())["language"] == lang


@pytest.mark.parametrize("name", NAMES)
def test_each_image_is_named_after_its_function_with_registry_and_tag_from_the_environment(name):
    assert FUNCTIONS[name]["image"] == f"${{REGISTRY:-ghcr.io/supercheck-faas}}/{name}:${{TAG:-latest}}"


def test_the_copy_paths_exist_inside_the_project_as_faas_cli_requires():
    copies = RAW_STACK["configuration"]["copy"]
    assert "./shared" in copies
    for path in copies:
        resolved = (PROJECT_ROOT / path).resolve()
        assert resolved.exists(), f"configuration.copy: {path} does not exist"
        # faas-cli's pathInScope: inside the project, and not the project itself
        assert resolved != PROJECT_ROOT and resolved.is_relative_to(PROJECT_ROOT), path


def test_no_template_repository_is_configured_so_faas_cli_uses_the_template_folder():
    assert "templates" not in RAW_STACK["configuration"]
    assert (PROJECT_ROOT / "template").resolve() == PROJECT_ROOT / "openfaas" / "template"


@pytest.mark.parametrize("name", NAMES)
def test_each_function_gets_the_secrets_it_needs(name):
    secrets = FUNCTIONS[name].get("secrets") or []
    assert EVERY_FUNCTION_SECRETS <= set(secrets), f"{name}: every function reads Postgres and Redis"
    assert len(secrets) == len(set(secrets))
    if name == "api" or name == "alert" or name.startswith("check-"):
        assert "credential-key" in secrets, f"{name}: encrypts or decrypts stored credentials"
    if name in UNSIGNED_FUNCTIONS:
        assert "internal-token" not in secrets, (
            f"{name}: a function that signs and verifies nothing holds no key"
        )
        return
    # every function verifies signed deliveries (shared/handlers.py), and the api signs its trials
    assert "internal-token" in secrets, f"{name}: verifies or signs internal calls"


def documented_secrets() -> set[str]:
    return set(re.findall(r"faas-cli secret create ([a-z0-9-]+)", DOCS.read_text()))


def test_every_secret_stack_yml_references_is_documented_with_its_faas_cli_command():
    referenced = {secret for spec in FUNCTIONS.values() for secret in spec.get("secrets") or []}
    assert referenced - documented_secrets() == set(), "add `faas-cli secret create <name>` to docs/deploy.md"


def test_every_secret_the_code_reads_is_documented():
    read_by_code = set()
    for path in (PROJECT_ROOT / "shared").rglob("*.py"):
        read_by_code |= set(re.findall(r"read_secret\(\s*\"([a-z0-9-]+)\"", path.read_text()))
    assert {"database-url", "redis-url", "credential-key"} <= read_by_code
    assert read_by_code - documented_secrets() == set()


@pytest.mark.parametrize("name", NAMES)
def test_each_function_has_watchdog_timeouts_that_fit_the_connector(name):
    environment = FUNCTIONS[name].get("environment") or {}
    assert WATCHDOG_SETTINGS <= set(environment), f"{name}: set read_timeout, write_timeout and exec_timeout"
    read, write, execute = (
        seconds(environment[k]) for k in ("read_timeout", "write_timeout", "exec_timeout")
    )
    assert 0 < read <= write and execute <= write, f"{name}: the response must be writable for the whole exec"
    # the connector waits this long for a batch's reply; a longer function would be retried while still running
    assert write < ConnectorConfig.request_timeout_seconds, name
    if name == "check-synthetic":
        assert execute >= 120, "browser journeys need minutes"


# The longest config each check type accepts, and one just past it (which validation must refuse).
LONGEST_CHECKS = [
    ("http_request", "https://example.com/", {"timeoutSeconds": 60}, {"timeoutSeconds": 61}),
    ("website", "https://example.com/", {"timeoutSeconds": 60}, {"timeoutSeconds": 61}),
    # retries: every attempt and every wait count (3 x 18 s + 3 s + 3 s = 60 s; waits of 4 s go past)
    (
        "http_request",
        "https://example.com/",
        {"timeoutSeconds": 18, "retry": {"count": 2, "delaySeconds": 3}},
        {"timeoutSeconds": 18, "retry": {"count": 2, "delaySeconds": 4}},
    ),
    (
        "port_check",
        "example.com",
        {
            "port": 443,
            "timeoutSeconds": 10,
            "retry": {"count": 3, "backoff": "exponential", "delaySeconds": 2},
        },
        {
            "port": 443,
            "timeoutSeconds": 10,
            "retry": {"count": 3, "backoff": "exponential", "delaySeconds": 3},
        },
    ),
    ("port_check", "example.com", {"port": 443, "timeoutSeconds": 60}, {"port": 443, "timeoutSeconds": 61}),
    (
        "ping_host",
        "example.com",
        {"count": 20, "intervalSeconds": 2, "timeoutSeconds": 20},
        {"count": 20, "intervalSeconds": 2, "timeoutSeconds": 21},
    ),
    (
        "synthetic_test",
        str(uuid.uuid4()),
        {"playwrightOptions": {"timeout": 240_000}},
        {"playwrightOptions": {"timeout": 240_001}},
    ),
]


@pytest.mark.parametrize(("check_type", "target", "longest", "too_long"), LONGEST_CHECKS)
def test_the_longest_check_each_type_accepts_fits_its_functions_exec_timeout(
    check_type, target, longest, too_long
):
    """Past exec_timeout the watchdog kills the batch, and the connector's redelivery runs its bundle-mates again."""
    check = CHECK_TYPES[check_type]
    check.config_model.model_validate({"target": target, **longest})
    with pytest.raises(ValidationError):
        check.config_model.model_validate({"target": target, **too_long})
    environment = FUNCTIONS[check.function]["environment"]
    settings = Settings.from_env()
    # what the function process reads: stack.yml's environment is the watchdog's, and the function inherits it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("exec_timeout", environment["exec_timeout"])
        exec_timeout = Settings.from_env().exec_timeout_seconds
    assert exec_timeout == seconds(environment["exec_timeout"])
    job = CheckJob.model_validate(a_job(type=check_type, target=target, config=longest))
    # its check's hard timeout, a wait for its slot when dispatched ahead, and the time to store and answer
    needed = time_allowed(job) + settings.schedule_lookahead_seconds + REPLY_MARGIN_SECONDS
    assert needed <= exec_timeout, (
        f"{check_type}: {needed} s does not fit {check.function}'s {exec_timeout} s"
    )


def test_the_gateway_timeouts_in_the_docs_cover_the_longest_function():
    longest = max(seconds(spec["environment"]["write_timeout"]) for spec in FUNCTIONS.values())
    upstream = re.search(r"gateway\.upstreamTimeout=(\w+)", DOCS.read_text()).group(1)
    assert seconds(upstream) > longest


@pytest.mark.parametrize("name", NAMES)
def test_scaling_labels_stay_within_openfaas_ce(name):
    labels = FUNCTIONS[name].get("labels") or {}
    low, high = int(labels["com.openfaas.scale.min"]), int(labels["com.openfaas.scale.max"])
    assert 1 <= low <= high <= OPENFAAS_CE_MAX_REPLICAS, name
    assert all(isinstance(value, str) for value in labels.values()), (
        "OpenFaaS labels are strings: quote numbers"
    )


def cron_functions(stack: dict) -> dict[str, str]:
    return {
        name: spec["annotations"]["schedule"]
        for name, spec in stack["functions"].items()
        if (spec.get("annotations") or {}).get("topic") == "cron-function"
    }


def test_cron_annotations_parse_and_cover_the_periodic_work():
    crons = cron_functions(load_stack())
    assert {"schedule", "aggregate"} <= set(crons)
    if "cleanup" in FUNCTIONS:
        assert "cleanup" in crons
    for name, schedule in crons.items():
        assert croniter.is_valid(schedule), f"{name}: '{schedule}' is not a cron expression"
    for name, spec in FUNCTIONS.items():
        annotations = spec.get("annotations") or {}
        assert ("schedule" in annotations) == (annotations.get("topic") == "cron-function"), name


def test_a_regional_install_deploys_only_check_functions_and_needs_no_cron_connector():
    regional = fnmatch.filter(NAMES, "check-*")  # faas-cli deploy --filter uses glob matching
    assert "check-http" in regional
    assert all(FUNCTIONS[name]["handler"].startswith("./functions/check_") for name in regional)
    assert not set(regional) & set(cron_functions(RAW_STACK))
    primary_only = set(NAMES) - set(regional)
    assert {"api", "schedule", "aggregate", "alert"} <= primary_only


def referenced_variables() -> dict[str, bool]:
    """Each ${VAR} in stack.yml, and whether it has a default."""
    found: dict[str, bool] = {}
    for var, default in ENV_REFERENCE.findall(DEFAULT_STACK.read_text()):
        found[var] = found.get(var, False) or bool(default)
    return found


def test_stack_yml_environment_changes_nothing_locally_when_the_variables_are_unset(monkeypatch):
    """The local runtime applies stack.yml's environment over its own, so unset it must equal the defaults."""
    for var in referenced_variables():
        monkeypatch.delenv(var, raising=False)
    for name in ("DATABASE_URL", "REDIS_URL", "SC_CREDENTIAL_KEY"):
        monkeypatch.delenv(name, raising=False)

    def effective() -> dict:
        """Settings as the code reads them: MONITOR_* variables as the retention config they make."""
        settings = Settings.from_env()
        retention = RetentionConfig.from_variables(settings.monitor_variables)
        return {**settings.model_dump(exclude={"monitor_variables"}), "retention": retention.model_dump()}

    defaults = effective()
    for name, spec in load_stack()["functions"].items():
        for key, value in (spec.get("environment") or {}).items():
            if key in WATCHDOG_SETTINGS | CRON_SETTINGS | {"SC_FUNCTION_NAME"}:
                continue  # SC_FUNCTION_NAME: the local runtime sets each function's own (see the test below)
            monkeypatch.setenv(key, str(value))
            assert effective() == defaults, f"{name}: {key}={value} is not the local default"
            monkeypatch.delenv(key)


def test_each_function_names_its_database_connections_after_itself():
    for name, spec in load_stack()["functions"].items():
        assert spec["environment"].get("SC_FUNCTION_NAME") == name, f"{name}: set SC_FUNCTION_NAME: {name}"


def test_there_is_one_file_per_default_location_and_exactly_one_primary():
    assert set(Settings.from_env().locations) <= set(REGIONS)
    primaries = [region for region, values in REGIONS.items() if values["CONNECTOR_PRIMARY"] == "true"]
    assert primaries == ["us-east"]


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_each_region_file_configures_its_connector_and_every_variable_of_stack_yml(region):
    values = REGIONS[region]
    assert values["WORKER_LOCATION"] == region
    assert values["CONNECTOR_PRIMARY"] in {"true", "false"}
    locations = values["SC_LOCATIONS"].split(",")
    assert region in locations
    assert all(other["SC_LOCATIONS"] == values["SC_LOCATIONS"] for other in REGIONS.values())
    assert set(locations) == set(REGIONS), "every location needs a region file with its connector"
    required = {var for var, has_default in referenced_variables().items() if not has_default}
    missing = (required | REGION_SPECIFIC) - set(values)
    assert not missing, f"{region}.env does not set {sorted(missing)}, which stack.yml uses"
    for key in ("CONNECTOR_BATCH_SIZE", "CONNECTOR_CONCURRENCY"):
        assert int(values[key]) > 0


# --- the CI step of docs/deploy.md, run against the local stack -----------------------------------------------


def ci_step(name_fragment: str) -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    workflows = [yaml.safe_load(block) for block in blocks]
    steps = [step for wf in workflows if "jobs" in wf for job in wf["jobs"].values() for step in job["steps"]]
    return next(step for step in steps if name_fragment in step.get("name", ""))


def test_the_ci_workflow_in_the_docs_deploys_each_region_with_its_filter():
    script = ci_step("Deploy every region")["run"]
    assert "faas-cli deploy -f stack.yml --filter 'check-*'" in script
    assert '. "openfaas/regions/$region.env"' in script


@pytest.fixture(scope="module")
def pipeline(infra, tmp_path_factory) -> Iterator[LocalStack]:
    """The functions an HTTP monitor's run needs, so another function's work in progress cannot block this."""
    local = LocalStack(
        env={"ALLOW_INTERNAL_TARGETS": "true", "SC_ALLOW_ANONYMOUS_LOCAL": "true"},
        log_dir=tmp_path_factory.mktemp("ci-step-logs"),
        gateway_port=free_port(),
        with_cron=False,
        only_functions=["api", "schedule", "check-http", "aggregate", "alert"],
    ).start()
    yield local
    local.stop()


@pytest.fixture
def api(pipeline, clean):
    with httpx.Client(base_url=f"{pipeline.gateway_url}/function/api", timeout=30) as client:
        yield client


def run_ci_step(api: httpx.Client, tag: str) -> subprocess.CompletedProcess:
    key = api.post("/api-keys", json={"name": "ci"})
    assert key.status_code == 201, key.text
    step = ci_step("Run the checkout monitors now")
    env = {
        **{k: str(v) for k, v in step["env"].items()},
        "API_URL": str(api.base_url).rstrip("/"),
        "API_KEY": key.json()["key"],
        "MONITOR_TAG": tag,
        "TIMEOUT_SECONDS": "90",
        "POLL_SECONDS": "0.5",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=150)


def create_tagged_monitor(api: httpx.Client, target: str, tag: str) -> str:
    body = {
        "name": f"{tag} {target}",
        "type": "http",
        "target": target,
        "frequencyMinutes": 60,
        "tags": [tag],
    }
    response = api.post("/monitors", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_the_ci_step_passes_when_every_tagged_monitor_is_up(api, http_target):
    monitors = [create_tagged_monitor(api, http_target.url, "checkout") for _ in range(2)]
    create_tagged_monitor(api, "http://127.0.0.1:9/", "other")  # down, but not tagged
    result = run_ci_step(api, "checkout")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"monitor {monitor_id} run " in result.stdout for monitor_id in monitors)
    assert result.stdout.count(": up") == 2


def test_the_ci_step_fails_when_a_tagged_monitor_is_down(api, http_target):
    create_tagged_monitor(api, http_target.url, "checkout")
    create_tagged_monitor(api, "http://127.0.0.1:9/", "checkout")  # discard port: connection refused
    result = run_ci_step(api, "checkout")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ": down" in result.stdout and ": up" in result.stdout
    assert "::error::run " in result.stdout


def test_the_ci_step_fails_when_no_monitor_has_the_tag(api):
    result = run_ci_step(api, "nothing-tagged")
    assert result.returncode == 1
    assert "no monitor is tagged 'nothing-tagged'" in result.stdout
