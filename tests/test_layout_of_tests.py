"""The test suite's own layout: shared builders live in factories.py, conftest.py and the helper modules, so no test
module imports another (which would also collect, and run, the imported module's tests a second time)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(tree: ast.Module) -> set[str]:
    """The test_* modules an `import` or `from ... import` in the tree names, however spelled (relative ones as
    seen from tests/)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ("tests." if node.level else "") + (node.module or "")
            names.add(base.rstrip("."))
            names.update(
                f"{base.rstrip('.')}.{alias.name}" for alias in node.names
            )  # from tests import test_x
    found = set()
    for name in names:
        parts = name.split(".")
        if parts[0].startswith("test_"):
            found.add(parts[0])
        elif parts[0] == "tests" and len(parts) > 1 and parts[1].startswith("test_"):
            found.add(".".join(parts[:2]))
    return found


def test_every_spelling_of_importing_a_test_module_is_found():
    tree = ast.parse(
        "from tests.test_api import make_project\n"
        "from .test_bundles import a_job\n"
        "from . import test_rollups\n"
        "import tests.test_scheduling\n"
        "from tests import test_locations, factories\n"
        "import test_chaos\n"
        "from tests.factories import a_job\n"
        "import tests.servers\n"
    )
    assert imported_test_modules(tree) == {
        "tests.test_api",
        "tests.test_bundles",
        "tests.test_rollups",
        "tests.test_scheduling",
        "tests.test_locations",
        "test_chaos",
    }


def test_no_test_module_imports_another():
    offenders = {
        path.name: sorted(imported_test_modules(ast.parse(path.read_text(), filename=str(path))))
        for path in sorted(TESTS.glob("*.py"))
    }
    assert {name: found for name, found in offenders.items() if found} == {}, (
        "move what they share to tests/factories.py (builders) or tests/conftest.py (fixtures)"
    )
