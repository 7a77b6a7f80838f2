"""The four managed kinds between the file, the display form the plan compares and the API: reading the live
project and the managed state, and the API calls that create, change and delete each kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.cli import files
from shared.cli.client import ApiClient
from shared.cli.document import ENTRY_MODELS
from shared.rules.managed_plan import KINDS, Applied, Desired, Live

# The fields of each kind the file holds (and the plan compares), in the order a file shows them.
FIELDS = {
    "notificationProviders": ("name", "type", "config", "enabled"),
    "monitors": (
        "name",
        "type",
        "target",
        "frequencyMinutes",
        "enabled",
        "config",
        "locationConfig",
        "alertConfig",
        "tags",
    ),
    "maintenanceWindows": ("name", "monitorIds", "startsAt", "endsAt", "cron", "durationMinutes", "timezone"),
    "statusPages": (
        "slug",
        "title",
        "description",
        "groups",
        "customDomain",
        "showResponseTimes",
        "showUptime",
        "published",
    ),
}
PATHS = {
    "notificationProviders": "/notification-providers",
    "monitors": "/monitors",
    "maintenanceWindows": "/maintenance-windows",
    "statusPages": "/status-pages",
}
SINGULAR = {
    "notificationProviders": "notification provider",
    "monitors": "monitor",
    "maintenanceWindows": "maintenance window",
    "statusPages": "status page",
}


@dataclass(frozen=True)
class FileItem:
    """One item of the file: as written (references unresolved), resolved, and in display form."""

    desired: Desired
    written: dict  # without its key
    resolved: dict  # without its key


# --- display forms -------------------------------------------------------------------------------------------


def _utc(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def display_form(kind: str, resource: Mapping[str, Any]) -> dict:
    """A resource (a validated file item or an API read) reduced to the fields the file holds."""
    shown = {name: resource.get(name) for name in FIELDS[kind]}
    if kind == "maintenanceWindows":
        shown["startsAt"], shown["endsAt"] = _utc(shown["startsAt"]), _utc(shown["endsAt"])
    if kind == "statusPages":
        shown["groups"] = [
            {"name": group.get("name"), "monitorIds": group.get("monitorIds")}
            for group in shown["groups"] or []
        ]
    return shown


def desired_display(kind: str, resolved: dict) -> dict:
    """What the API's reads would show once this item is applied: validated by the API's model, secrets masked
    as the API masks them (sealed here under a throwaway project and key)."""
    from shared.security import mask_secrets, mask_target

    model = ENTRY_MODELS[kind].model_validate(resolved, context=files.ensure_local_sealing())
    dumped = model.model_dump(mode="json", by_alias=True, exclude={"key"})
    if kind == "monitors":
        dumped["config"] = mask_secrets(dumped["config"], files.LOCAL_PROJECT, ("config",))
        dumped["target"] = mask_target(dumped["target"])
    elif kind == "notificationProviders":
        from shared.notify import masked_config

        dumped["config"] = masked_config(dumped["type"], dumped["config"])
    return display_form(kind, dumped)


def file_items(loaded: files.Loaded, environ: Mapping[str, str]) -> list[FileItem]:
    """Every item of a valid file, its references resolved (the caller has checked none is unset)."""
    items = []
    for kind in KINDS:
        for written in loaded.data.get(kind) or []:
            resolved = files.resolve(written, environ)
            secrets = {files.dotted(path): files.at(resolved, path) for path in files.env_references(written)}
            body = {name: value for name, value in resolved.items() if name != "key"}
            desired = Desired(kind, written["key"], desired_display(kind, resolved), secrets)
            items.append(FileItem(desired, {k: v for k, v in written.items() if k != "key"}, body))
    return items


# --- reading the server ----------------------------------------------------------------------------------------


def live_resources(client: ApiClient) -> list[Live]:
    found = [
        Live("notificationProviders", item["id"], display_form("notificationProviders", item))
        for item in client.get(PATHS["notificationProviders"])
    ]
    found += [
        Live("monitors", item["id"], display_form("monitors", item)) for item in client.pages("/monitors")
    ]
    found += [
        Live("maintenanceWindows", item["id"], display_form("maintenanceWindows", item))
        for item in client.get(PATHS["maintenanceWindows"])
    ]
    found += [
        Live("statusPages", item["id"], display_form("statusPages", item))
        for item in client.pages("/status-pages")
    ]
    return found


def read_one(client: ApiClient, kind: str, resource_id: str) -> dict:
    return display_form(kind, client.get(f"{PATHS[kind]}/{resource_id}"))


@dataclass(frozen=True)
class ManagedState:
    generation: int
    applied: list[Applied]


def managed_state(client: ApiClient) -> ManagedState:
    answer = client.get("/managed-resources")
    applied = [
        Applied(item["kind"], item["key"], item["resourceId"], item["desired"], item["observed"])
        for item in answer["resources"]
    ]
    return ManagedState(answer["generation"], applied)


# --- writing through the API -----------------------------------------------------------------------------------


def create(client: ApiClient, kind: str, body: dict) -> str:
    if kind == "notificationProviders":
        enabled = body.get("enabled", True)
        created = client.post(PATHS[kind], {k: v for k, v in body.items() if k != "enabled"})
        if not enabled:
            client.patch(f"{PATHS[kind]}/{created['id']}", {"enabled": False})
        return created["id"]
    return client.post(PATHS[kind], body)["id"]


def create_monitors(client: ApiClient, bodies: list[dict]) -> list[str]:
    """Monitors created in one request, all or none (the API's batch form, first runs spread out); their ids in
    order."""
    return [created["id"] for created in client.post(PATHS["monitors"], bodies)]


def update(client: ApiClient, kind: str, resource_id: str, body: dict) -> str:
    """The resource made to match body; a provider whose type changes is replaced (the API cannot change a
    type), so its id may change."""
    path = f"{PATHS[kind]}/{resource_id}"
    if kind != "notificationProviders":
        client.put(path, body)
        return resource_id
    current = client.get(path)
    if current["type"] != body["type"]:
        client.delete(path)
        return create(client, kind, body)
    client.patch(path, {"name": body["name"], "config": body["config"], "enabled": body.get("enabled", True)})
    return resource_id


def delete(client: ApiClient, kind: str, resource_id: str) -> None:
    client.delete(f"{PATHS[kind]}/{resource_id}")
