"""The image's test stage: loads the handler exactly as the fprocess will, before the image may ship.

It runs in the handler folder (the container's working directory) with the image's environment, and fails the
build when main.py does not import, `handle` is missing or not `async def`, the shared package is not the copy
that faas-cli put beside the handler, or a runtime dependency is missing.
"""

from __future__ import annotations

import inspect
import shlex
import sys
from pathlib import Path

import yaml
from functions_framework.aio import create_asgi_app


def fprocess_options(template: Path) -> dict[str, str]:
    """'--target handle --source main.py ...' from template.yml, so the check cannot drift from the fprocess."""
    argv = shlex.split(yaml.safe_load(template.read_text())["fprocess"])
    return {
        flag.lstrip("-"): value
        for flag, value in zip(argv[1:], argv[2:], strict=False)
        if flag.startswith("--")
    }


def main() -> int:
    here = Path.cwd()
    options = fprocess_options(Path(__file__).resolve().parent / "template.yml")
    app = create_asgi_app(options["target"], options["source"])
    handler = sys.modules[Path(options["source"]).stem].__dict__[options["target"]]
    problems = []
    if not inspect.iscoroutinefunction(handler):
        problems.append(
            f"{options['source']}: '{options['target']}' must be `async def` (functions-framework ASGI)"
        )
    import shared

    shared_home = Path(shared.__file__).resolve().parent
    if shared_home != here / "shared":
        problems.append(f"shared imported from {shared_home}, not from the copy in {here / 'shared'}")
    for problem in problems:
        print(f"smoke test: {problem}", file=sys.stderr)
    if not problems:
        print(
            f"smoke test: {options['source']}:{options['target']} loads as {type(app).__name__}; shared from {shared_home}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
