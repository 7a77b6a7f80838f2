"""The layout's promises, read from the source with `ast`: no import cycle in shared/, pure rules import no
driver or client, and only settings.py reads the environment.

Every import counts, including those inside functions and under TYPE_CHECKING: a cycle hidden from Python by a
late import is still a cycle for the reader.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _project_modules() -> dict[str, Path]:
    modules = {}
    for top in ("shared", "functions", "openfaas"):
        for path in (ROOT / top).rglob("*.py"):
            modules[_module_name(path)] = path
    return modules


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_names(module: str) -> set[str]:
    """Dotted names this module imports anywhere in its body; `from a import b` yields a.b when b is a module."""
    path = _project_modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _project_imports(module: str) -> set[str]:
    known = _project_modules()
    return {name for name in _imported_names(module) if name in known and name != module}


def _shared_graph() -> dict[str, set[str]]:
    shared = [name for name in _project_modules() if name == "shared" or name.startswith("shared.")]
    return {name: {dep for dep in _project_imports(name) if dep.startswith("shared")} for name in shared}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:  # noqa: C901 -- Tarjan's algorithm, kept whole to read against its textbook form
    """Strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_shared_has_no_import_cycle():
    graph = _shared_graph()
    assert len(graph) > 50, "the scan found too few modules to mean anything"
    assert _cycles(graph) == []


# The pure decision modules: given values, they return values. No I/O may be reachable from them.
PURE_MODULES = ["shared.rules", "shared.dashboard.charts"]
IMPURE_IMPORTS = {
    "psycopg",
    "psycopg_pool",
    "redis",
    "httpx",
    "httpcore",
    "requests",
    "apprise",
    "boto3",
    "botocore",
    "playwright",
    "icmplib",
    "socket",
    "asyncio",
    "subprocess",
}


def _pure_roots() -> list[str]:
    return [
        name
        for name in _project_modules()
        if any(name == root or name.startswith(f"{root}.") for root in PURE_MODULES)
    ]


def _reachable(start: str) -> dict[str, str]:
    """Every project module reachable from start, each mapped to the module that imported it first."""
    seen = {start: start}
    todo = [start]
    while todo:
        module = todo.pop()
        for dep in _project_imports(module):
            if dep not in seen:
                seen[dep] = module
                todo.append(dep)
    return seen


@pytest.mark.parametrize("module", sorted(_pure_roots()))
def test_pure_rules_reach_no_driver_client_or_network(module):
    offences = []
    for reached, importer in _reachable(module).items():
        for name in _imported_names(reached):
            if name.split(".")[0] in IMPURE_IMPORTS:
                offences.append(f"{reached} imports {name} (reached via {importer})")
    assert offences == []


def test_the_purity_scan_sees_an_impure_import():
    assert "psycopg" in {name.split(".")[0] for name in _imported_names("shared.db")}
    assert len(_pure_roots()) >= 4


# Each entry says why this file may read the process environment itself.
ENVIRONMENT_READERS = {
    "shared/settings.py": "the one place the system's configuration is read",
    "openfaas/local/__main__.py": "the local runtime decides which embedded servers to start from what the "
    "user set, then writes the environment its child processes inherit",
    "openfaas/local/runtime.py": "composes each function process's environment from its own, as faas-cli would",
    "openfaas/local/stack.py": "expands ${VAR} references in stack.yml, as faas-cli does",
    "openfaas/local/gateway.py": "uvicorn's factory receives its upstream table from the parent process",
    "shared/cli/environment.py": "the supercheck CLI runs in a user's shell or CI job: it reads SUPERCHECK_URL, "
    "the key, GITHUB_* and the ${VAR}s a file references from there, not the system's settings",
    "openfaas/local/services.py": "SC_EMBEDDED_PG_FAST is a test and bench knob of the embedded Postgres, "
    "not a setting of the system",
}


def _environment_reads(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv", "environb"}:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in {"environ", "getenv", "putenv", "environb"} for alias in node.names):
                lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment():
    readers = {}
    for path in _project_modules().values():
        relative = path.relative_to(ROOT).as_posix()
        if relative not in ENVIRONMENT_READERS and (lines := _environment_reads(path)):
            readers[relative] = lines
    assert readers == {}, (
        "read configuration through shared.settings.get_settings(), or allow-list with a reason"
    )


def test_every_allow_listed_reader_still_reads_the_environment():
    stale = [path for path in ENVIRONMENT_READERS if not _environment_reads(ROOT / path)]
    assert stale == []
