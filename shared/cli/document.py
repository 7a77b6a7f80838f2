"""The shape of a supercheck.yaml: the API's own request models, each item with a stable `key`, references by key.

Each entry model subclasses the API's request model, so a file is refused by exactly the rules the API applies;
only the references (alertConfig.notificationProviders, monitorIds) hold keys of the same file instead of ids."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from shared.api.requests import (
    MANAGED_KEY_PATTERN,
    MaintenanceWindowCreate,
    MonitorCreate,
    NotificationProviderCreate,
    StatusPageCreate,
    StatusPageGroup,
)
from shared.models import AlertConfig, ApiModel

ResourceKey = Annotated[
    str,
    Field(
        pattern=MANAGED_KEY_PATTERN,
        description="stable name of this resource in the file: 1-100 of a-z, 0-9, '.', '_', '-'; "
        "renaming a key deletes the resource and creates a new one",
    ),
]


class AlertConfigEntry(AlertConfig):
    notification_providers: list[ResourceKey] = Field(
        default_factory=list, max_length=10, description="keys of notificationProviders in this file"
    )


class MonitorEntry(MonitorCreate):
    key: ResourceKey
    alert_config: AlertConfigEntry = Field(default_factory=AlertConfigEntry)


class NotificationProviderEntry(NotificationProviderCreate):
    key: ResourceKey
    enabled: bool = True


class MaintenanceWindowEntry(MaintenanceWindowCreate):
    key: ResourceKey
    monitor_ids: list[ResourceKey] = Field(
        default_factory=list,
        max_length=1000,
        description="keys of monitors in this file; empty: whole project",
    )


class StatusPageGroupEntry(StatusPageGroup):
    monitor_ids: list[ResourceKey] = Field(min_length=1, max_length=500, description="keys of monitors")


class StatusPageEntry(StatusPageCreate):
    key: ResourceKey
    groups: list[StatusPageGroupEntry] = Field(default_factory=list, max_length=50)


class SupercheckFile(ApiModel):
    """A project's monitors as code. Secrets are never written here: give them as ${ENV_VAR}, resolved at apply."""

    schema_: str | None = Field(
        default=None, alias="$schema", description="editors' schema reference; ignored"
    )
    notification_providers: list[NotificationProviderEntry] = Field(default_factory=list)
    monitors: list[MonitorEntry] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindowEntry] = Field(default_factory=list)
    status_pages: list[StatusPageEntry] = Field(default_factory=list)


# Resource kinds in the order they are created (a kind only refers to kinds before it); deleted in reverse.
KINDS = ("notificationProviders", "monitors", "maintenanceWindows", "statusPages")
ENTRY_MODELS: dict[str, type[ApiModel]] = {
    "notificationProviders": NotificationProviderEntry,
    "monitors": MonitorEntry,
    "maintenanceWindows": MaintenanceWindowEntry,
    "statusPages": StatusPageEntry,
}


def reference_paths(kind: str, item: dict) -> list[tuple[tuple, str, Any]]:
    """Where an item refers to other resources: (path within the item, kind referred to, the key given)."""
    found: list[tuple[tuple, str, Any]] = []
    if kind == "monitors":
        alert = item.get("alertConfig")
        providers = alert.get("notificationProviders") if isinstance(alert, dict) else None
        for i, key in enumerate(providers if isinstance(providers, list) else []):
            found.append((("alertConfig", "notificationProviders", i), "notificationProviders", key))
    elif kind == "maintenanceWindows":
        for i, key in enumerate(_list(item.get("monitorIds"))):
            found.append((("monitorIds", i), "monitors", key))
    elif kind == "statusPages":
        for g, group in enumerate(_list(item.get("groups"))):
            ids = group.get("monitorIds") if isinstance(group, dict) else None
            for i, key in enumerate(_list(ids)):
                found.append((("groups", g, "monitorIds", i), "monitors", key))
    return found


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def json_schema() -> dict:
    """The file's JSON Schema, for editors (yaml-language-server, VS Code)."""
    from shared.notify import PROVIDERS  # noqa: F401  (the provider type enum reads the provider table)

    schema = SupercheckFile.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "supercheck.yaml"
    return schema
