"""Loading a supercheck.yaml (or JSON): values with the line and column of every field, ${ENV_VAR} references,
and validation with the API's own models, each problem reported as FILE:LINE:COLUMN: field: message."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.cli import environment
from shared.cli.document import KINDS, SupercheckFile, reference_paths
from shared.cli.exits import InvalidInput

FieldPath = tuple  # a field's path in the file: ('monitors', 0, 'config', 'timeoutSeconds')
# ${NAME}; $${ is a literal "${"
ENV_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
# what the checks' validation may seal offline; thrown away (only the server's ciphertexts are ever stored)
LOCAL_PROJECT = uuid.UUID(int=0)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.field}: {self.message}"


@dataclass
class Loaded:
    """A file's data (plain JSON values) and where each field starts (1-based line and column)."""

    file: str
    data: dict
    positions: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: FieldPath) -> tuple[int, int]:
        """The position of path, or of its nearest ancestor present in the file (a missing field: its parent)."""
        for end in range(len(path), -1, -1):
            if tuple(path[:end]) in self.positions:
                return self.positions[tuple(path[:end])]
        return (1, 1)

    def problem(self, path: FieldPath, message: str) -> Problem:
        line, column = self.where(path)
        return Problem(self.file, line, column, dotted(path) or "(file)", message)


def dotted(path: FieldPath) -> str:
    return ".".join(str(part) for part in path)


# --- loading ---------------------------------------------------------------------------------------------


def load(file: str | Path) -> Loaded:
    """Reads YAML or JSON (JSON is YAML); raises InvalidInput pointing at a syntax error or duplicate key."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    name = str(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{name}: cannot read: {error}") from None
    try:
        data = YAML(typ="safe", pure=True).load(text)
        node = YAML(typ="safe", pure=True).compose(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InvalidInput(f"{name}:{line}:{column}: (file): {error.problem or error.context}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{name}:1:1: (file): must be a mapping with monitors, notificationProviders, ...")
    loaded = Loaded(name, _plain(data))
    if node is not None:
        _record_positions(node, (), loaded.positions)
    return loaded


def _plain(value: Any) -> Any:
    """YAML's own types as JSON's: a timestamp becomes its ISO 8601 text, as the API reads it."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _record_positions(node: Any, path: FieldPath, positions: dict) -> None:
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _record_positions(value_node, child, positions)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            positions[(*path, index)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _record_positions(item, (*path, index), positions)


# --- ${ENV_VAR} references ---------------------------------------------------------------------------------


def env_references(value: Any, path: FieldPath = ()) -> dict[FieldPath, list[str]]:
    """Each string field holding ${NAME} references, with the names (pure)."""
    found: dict[FieldPath, list[str]] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(env_references(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(env_references(item, (*path, index)))
    elif isinstance(value, str):
        names = [match.group(2) for match in ENV_REFERENCE.finditer(value) if not match.group(1)]
        if names:
            found[path] = names
    return found


def substitute(text: str, environ: Mapping[str, str], keep_unset: bool = False) -> str:
    """text with its references replaced; an unset one stays as written when keep_unset (KeyError otherwise)."""

    def replace(match: re.Match) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if name in environ:
            return environ[name]
        if keep_unset:
            return match.group(0)
        raise KeyError(name)

    return ENV_REFERENCE.sub(replace, text)


def resolve(value: Any, environ: Mapping[str, str], keep_unset: bool = False) -> Any:
    """A copy of value with every reference resolved (pure); raises KeyError naming an unset variable."""
    if isinstance(value, dict):
        return {key: resolve(item, environ, keep_unset) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, environ, keep_unset) for item in value]
    if isinstance(value, str):
        return substitute(value, environ, keep_unset)
    return value


def unset_references(loaded: Loaded, environ: Mapping[str, str]) -> list[Problem]:
    return [
        loaded.problem(path, f"${{{name}}} is not set in the environment")
        for path, names in env_references(loaded.data).items()
        for name in names
        if name not in environ
    ]


# --- validation ---------------------------------------------------------------------------------------------


def validate(
    loaded: Loaded, environ: Mapping[str, str] | None = None, *, require_env: bool = False
) -> Problems:
    """Every problem of the file, as the API would refuse it, plus keys and references.

    Offline (require_env False) an unset ${VAR} is left as written, and a problem in a field that holds one is
    a note, not an error: its value is not known here. With require_env (plan, apply) the unset variable is
    the error, and the field's own problems wait until it is set.
    """
    environ = environment.variables() if environ is None else environ
    references = env_references(loaded.data)
    problems = Problems()
    if require_env:
        problems.errors.extend(unset_references(loaded, environ))
    data = resolve(loaded.data, environ, keep_unset=True)
    for path, message in _model_problems(data):
        unknown = [ref for ref in references if _related(ref, path) and _has_unset(ref, loaded.data, environ)]
        if not unknown:
            problems.errors.append(loaded.problem(path, message))
        elif not require_env:  # with require_env the unset variable is the error already
            problems.notes.append(loaded.problem(path, message))
    problems.errors.extend(_key_problems(loaded))
    problems.errors.extend(_secret_problems(loaded))
    problems.errors.sort(key=lambda p: (p.line, p.column))
    return problems


@dataclass
class Problems:
    errors: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


def _has_unset(path: FieldPath, data: dict, environ: Mapping[str, str]) -> bool:
    value = at(data, path)
    return isinstance(value, str) and any(
        not m.group(1) and m.group(2) not in environ for m in ENV_REFERENCE.finditer(value)
    )


def _related(a: FieldPath, b: FieldPath) -> bool:
    shorter = min(len(a), len(b))
    return tuple(a[:shorter]) == tuple(b[:shorter])


def at(data: Any, path: FieldPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def ensure_local_sealing() -> dict:
    """The validation context a monitor's config needs to seal its secrets here; what it seals is thrown away."""
    from shared.checks.credentials import Sealing

    environment.ensure_credential_key()
    return Sealing(LOCAL_PROJECT).context()


def _model_problems(data: dict) -> list[tuple[FieldPath, str]]:
    from shared.errors import PrefixedValidationError, describe_error

    try:
        SupercheckFile.model_validate(data, context=ensure_local_sealing())
    except ValidationError as error:
        found = []
        for item in error.errors():
            location = tuple(item["loc"])
            nested = (item.get("ctx") or {}).get("error")
            if isinstance(nested, PrefixedValidationError):
                parts = tuple(int(p) if p.isdigit() else p for p in nested.field.split("."))
                message = str(nested).removeprefix(f"{nested.field}: ")
                found.append(((*location, *parts), message))
            else:
                found.append((location, describe_error(item)))
        return found
    return []


def _key_problems(loaded: Loaded) -> list[Problem]:
    """Keys are unique per kind, and every reference names a key of the kind it refers to."""
    problems: list[Problem] = []
    keys: dict[str, set] = {}
    for kind in KINDS:
        keys[kind] = set()
        for index, item in enumerate(_items(loaded.data, kind)):
            key = item.get("key")
            if isinstance(key, str) and key in keys[kind]:
                problems.append(
                    loaded.problem((kind, index, "key"), f"'{key}' is the key of an earlier item")
                )
            keys[kind].add(key)
    for kind in KINDS:
        for index, item in enumerate(_items(loaded.data, kind)):
            for path, target_kind, key in reference_paths(kind, item):
                if isinstance(key, str) and key not in keys[target_kind]:
                    problems.append(
                        loaded.problem((kind, index, *path), f"no {target_kind} in this file has key '{key}'")
                    )
    return problems


def _items(data: dict, kind: str) -> list[dict]:
    items = data.get(kind)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _secret_problems(loaded: Loaded) -> list[Problem]:
    """A field the API encrypts (a monitor's credentials) must be a ${VAR} reference: secrets never in the file."""
    problems = []
    references = env_references(loaded.data)
    for index, item in enumerate(_items(loaded.data, "monitors")):
        for path in sealed_paths(item):
            full = ("monitors", index, *path)
            if full not in references:
                problems.append(
                    loaded.problem(
                        full, "is a secret: write it as ${ENV_VAR}, resolved at apply, never in the file"
                    )
                )
    return problems


def sealed_paths(monitor: dict) -> list[FieldPath]:
    """Paths in a monitor (as written) whose values the API stores encrypted: they are secrets."""
    from shared.checks.spec import CheckSpec
    from shared.security import is_encrypted

    config = monitor.get("config")
    if not isinstance(config, dict) or not config:
        return []
    try:
        spec = CheckSpec.model_validate(
            {"type": monitor.get("type"), "target": monitor.get("target") or "x", "config": config},
            context=ensure_local_sealing(),
        )
    except (ValidationError, ValueError):
        return []
    found: list[FieldPath] = []

    def walk(value: Any, path: FieldPath) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, (*path, i))
        elif is_encrypted(value) and at(config, path[1:]) is not None:
            found.append(path)

    walk({"config": spec.config}, ())
    return found


def load_valid(file: str | Path, environ: Mapping[str, str] | None = None, *, require_env: bool) -> Loaded:
    """The file, loaded and valid; raises InvalidInput listing every problem otherwise."""
    loaded = load(file)
    problems = validate(loaded, environ, require_env=require_env)
    if problems.errors:
        raise InvalidInput("\n".join(str(problem) for problem in problems.errors))
    return loaded
