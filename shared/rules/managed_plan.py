"""The supercheck CLI's plan, decided purely: desired (the file), last applied (the server's state per key) and
live (the API's reads), all in one display form, give creates, field-by-field updates, deletes, drift and
unmanaged resources. Used by shared/cli/plan.py and apply.py; table-tested in tests/test_cli_files.py.

Display form: a resource as the API's reads show it (secrets masked, None fields dropped), references to other
resources by key. A field changed live since the last apply (live differs from what that apply read back) is
drift; an apply puts it back to the file's value."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# Created in this order, each kind referring only to kinds before it; deleted in the reverse order.
KINDS = ("notificationProviders", "monitors", "maintenanceWindows", "statusPages")
# What identifies a live resource by hand, to adopt it for a key the state does not know yet (e.g. an export)
IDENTITY_FIELD = {
    "notificationProviders": "name",
    "monitors": "name",
    "maintenanceWindows": "name",
    "statusPages": "slug",
}
DIGEST_PREFIX = "scrypt$"
SECRET_CHANGED = "(changed secret)"

ActionKind = Literal["create", "update", "delete", "adopt", "unchanged"]


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Desired:
    """One item of the file: its display form, and the resolved value of each field that held a ${VAR}."""

    kind: str
    key: str
    display: dict
    secrets: Mapping[str, str] = field(default_factory=dict)  # dotted path -> resolved value


@dataclass(frozen=True)
class Applied:
    """The state the last apply recorded for a key."""

    kind: str
    key: str
    resource_id: str
    desired: dict
    observed: dict

    @property
    def digests(self) -> Mapping[str, str]:
        return self.desired.get("secretDigests") or {}


@dataclass(frozen=True)
class Live:
    """A live resource in display form, its references still as ids (mapped to keys by the plan)."""

    kind: str
    id: str
    display: dict


@dataclass
class Action:
    kind: str
    key: str
    action: ActionKind
    resource_id: str | None = None
    changes: list[FieldChange] = field(default_factory=list)
    drift: list[FieldChange] = field(default_factory=list)
    live_gone: bool = False  # the state names a resource that no longer exists: created again


@dataclass
class Plan:
    actions: list[Action]
    unmanaged: list[Live]

    def of(self, *kinds: ActionKind) -> list[Action]:
        return [action for action in self.actions if action.action in kinds]

    @property
    def changes_resources(self) -> bool:
        return bool(self.of("create", "update", "delete"))


# --- secrets: a salted digest, kept instead of the value --------------------------------------------------


def secret_digest(value: str, salt: bytes) -> str:
    """scrypt, salted: what the state keeps of a resolved ${VAR}, slow to guess from (pure)."""
    digest = hashlib.scrypt(value.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"{DIGEST_PREFIX}{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def digest_matches(value: str, stored: str | None) -> bool:
    if not stored or not stored.startswith(DIGEST_PREFIX):
        return False
    salt_text, _, _ = stored[len(DIGEST_PREFIX) :].partition("$")
    try:
        salt = base64.b64decode(salt_text, validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(secret_digest(value, salt), stored)


# --- comparing display forms --------------------------------------------------------------------------------


def compact(value: Any) -> Any:
    """None-valued fields dropped, everywhere: a field absent and a field null mean the same here."""
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def field_changes(before: Any, after: Any, prefix: str = "") -> list[FieldChange]:
    """Field by field from before to after; objects are walked, anything else (lists too) compared whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for name in list(before) + [name for name in after if name not in before]:
            path = f"{prefix}.{name}" if prefix else str(name)
            changes.extend(field_changes(before.get(name), after.get(name), path))
        return changes
    return [] if before == after else [FieldChange(prefix, before, after)]


def secret_changes(desired: Desired, applied: Applied | None) -> list[FieldChange]:
    """Fields holding a ${VAR} whose resolved value differs from the one the last apply recorded."""
    digests = applied.digests if applied else {}
    return [
        FieldChange(path, SECRET_CHANGED, SECRET_CHANGED)
        for path, value in sorted(desired.secrets.items())
        if applied is not None and not digest_matches(value, digests.get(path))
    ]


# --- references: ids in live resources, keys in the file ---------------------------------------------------

# Where each kind refers to another: (path of a list of ids, kind referred to)
REFERENCES = {
    "monitors": [(("alertConfig", "notificationProviders"), "notificationProviders")],
    "maintenanceWindows": [(("monitorIds",), "monitors")],
    "statusPages": [(("groups", "*", "monitorIds"), "monitors")],
}


def with_keys(kind: str, display: dict, key_of: Mapping[str, Mapping[str, str]]) -> dict:
    """A live display form with its references as keys (an unmanaged one stays as 'id:<uuid>')."""
    result = display
    for path, target in REFERENCES.get(kind, []):
        result = _map_list_at(result, path, lambda i, target=target: key_of[target].get(str(i), f"id:{i}"))
    return result


def with_ids(kind: str, item: dict, id_of: Mapping[str, Mapping[str, str]]) -> dict:
    """A file item's references as the ids the API takes (every key must be known by then)."""
    result = item
    for path, target in REFERENCES.get(kind, []):
        result = _map_list_at(result, path, lambda key, target=target: id_of[target][key])
    return result


def _map_list_at(value: Any, path: tuple, convert) -> Any:
    if not path:
        return [convert(item) for item in value] if isinstance(value, list) else value
    head, rest = path[0], path[1:]
    if head == "*":
        return [_map_list_at(item, rest, convert) for item in value] if isinstance(value, list) else value
    if not isinstance(value, dict) or head not in value:
        return value
    return {**value, head: _map_list_at(value[head], rest, convert)}


# --- the plan ----------------------------------------------------------------------------------------------


def keys_of_live(
    desired: list[Desired], applied: list[Applied], live: list[Live]
) -> dict[str, dict[str, str]]:
    """Per kind, live id -> key: the state's, then adoption of a live resource without one whose identity
    (name, or slug) is the file's item's, when exactly one matches."""
    live_ids = {(item.kind, item.id) for item in live}
    key_of: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for entry in applied:
        if (entry.kind, entry.resource_id) in live_ids:
            key_of[entry.kind][entry.resource_id] = entry.key
    stated = {(entry.kind, entry.key) for entry in applied if (entry.kind, entry.resource_id) in live_ids}
    for item in desired:
        if (item.kind, item.key) in stated:
            continue
        identity = IDENTITY_FIELD[item.kind]
        matches = [
            candidate.id
            for candidate in live
            if candidate.kind == item.kind
            and candidate.id not in key_of[item.kind]
            and candidate.display.get(identity) == item.display.get(identity)
        ]
        if len(matches) == 1:
            key_of[item.kind][matches[0]] = item.key
    return key_of


def build_plan(desired: list[Desired], applied: list[Applied], live: list[Live]) -> Plan:
    key_of = keys_of_live(desired, applied, live)
    live_by_key = {
        (item.kind, key_of[item.kind][item.id]): item for item in live if item.id in key_of[item.kind]
    }
    shown = {
        (item.kind, key_of[item.kind][item.id]): compact(with_keys(item.kind, item.display, key_of))
        for item in live
        if item.id in key_of[item.kind]
    }
    applied_by_key = {(entry.kind, entry.key): entry for entry in applied}
    wanted = {(item.kind, item.key) for item in desired}
    actions = [
        _action(
            item, applied_by_key.get((item.kind, item.key)), live_by_key.get((item.kind, item.key)), shown
        )
        for item in sorted(desired, key=lambda d: (KINDS.index(d.kind), d.key))
    ]
    for entry in sorted(applied, key=lambda e: (-KINDS.index(e.kind), e.key)):
        if (entry.kind, entry.key) not in wanted:
            found = live_by_key.get((entry.kind, entry.key))
            actions.append(Action(entry.kind, entry.key, "delete", found.id if found else None))
    unmanaged = [item for item in live if item.id not in key_of[item.kind]]
    return Plan(actions, unmanaged)


def _action(
    item: Desired, applied: Applied | None, found: Live | None, shown: Mapping[tuple, dict]
) -> Action:
    if found is None:
        return Action(item.kind, item.key, "create", live_gone=applied is not None)
    live_display = shown[(item.kind, item.key)]
    changes = field_changes(live_display, compact(item.display))
    changed_paths = {change.path for change in changes}
    changes += [change for change in secret_changes(item, applied) if change.path not in changed_paths]
    if applied is None:
        return Action(item.kind, item.key, "adopt", found.id, changes)
    drift = field_changes(compact(applied.observed), live_display)
    return Action(item.kind, item.key, "update" if changes else "unchanged", found.id, changes, drift)
