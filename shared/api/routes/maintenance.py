"""The api function's maintenance window endpoints (tag "maintenance")."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import MaintenanceWindowCreate

maintenance = LazyModule("shared.api.services.maintenance")


@endpoint(
    "GET",
    "/maintenance-windows",
    summary="List maintenance windows",
    tag="maintenance",
    response=lambda: list[maintenance.MaintenanceWindowOut],
)
async def list_maintenance_windows(ctx: Context):
    return await maintenance.list_windows(ctx.project_id)


@endpoint(
    "POST",
    "/maintenance-windows",
    summary="Create a maintenance window (one-off or cron)",
    tag="maintenance",
    body=MaintenanceWindowCreate,
    response=lambda: maintenance.MaintenanceWindowOut,
    status=201,
)
async def create_maintenance_window(ctx: Context):
    return await maintenance.create_window(ctx.project_id, ctx.api_key_id, ctx.body)


@endpoint(
    "GET",
    "/maintenance-windows/{window_id}",
    summary="A maintenance window",
    tag="maintenance",
    response=lambda: maintenance.MaintenanceWindowOut,
)
async def get_maintenance_window(ctx: Context, window_id: str):
    return await maintenance.get_window(ctx.project_id, as_uuid(window_id, "maintenance window"))


@endpoint(
    "PUT",
    "/maintenance-windows/{window_id}",
    summary="Replace a maintenance window",
    tag="maintenance",
    body=MaintenanceWindowCreate,
    response=lambda: maintenance.MaintenanceWindowOut,
)
async def replace_maintenance_window(ctx: Context, window_id: str):
    return await maintenance.replace_window(
        ctx.project_id, ctx.api_key_id, as_uuid(window_id, "maintenance window"), ctx.body
    )


@endpoint(
    "DELETE",
    "/maintenance-windows/{window_id}",
    summary="Delete a maintenance window",
    tag="maintenance",
    status=204,
)
async def delete_maintenance_window(ctx: Context, window_id: str):
    await maintenance.delete_window(ctx.project_id, ctx.api_key_id, as_uuid(window_id, "maintenance window"))
