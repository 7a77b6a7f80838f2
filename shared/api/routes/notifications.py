"""The api function's notification endpoints (tag "notifications"): providers and per-monitor settings."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import NotificationProviderCreate, ProviderPatch
from shared.api.schemas import NotificationSettings, ProviderOut, ProviderTestResult

providers = LazyModule("shared.api.services.providers")


@endpoint(
    "GET",
    "/monitors/{monitor_id}/notification-settings",
    summary="Providers this monitor notifies",
    tag="notifications",
    response=NotificationSettings,
)
async def get_notification_settings(ctx: Context, monitor_id: str):
    return await providers.get_settings_for(ctx.project_id, as_uuid(monitor_id, "monitor"))


@endpoint(
    "PUT",
    "/monitors/{monitor_id}/notification-settings",
    summary="Set the providers this monitor notifies",
    tag="notifications",
    body=NotificationSettings,
    response=NotificationSettings,
)
async def put_notification_settings(ctx: Context, monitor_id: str):
    return await providers.put_settings_for(
        ctx.project_id, ctx.api_key_id, as_uuid(monitor_id, "monitor"), ctx.body
    )


@endpoint(
    "GET",
    "/notification-providers",
    summary="List notification providers (configs masked)",
    tag="notifications",
    response=list[ProviderOut],
)
async def list_providers(ctx: Context):
    return [providers.provider_out(row) for row in await providers.list_providers(ctx.project_id)]


@endpoint(
    "POST",
    "/notification-providers",
    summary="Create a notification provider",
    tag="notifications",
    body=NotificationProviderCreate,
    response=ProviderOut,
    status=201,
)
async def create_provider(ctx: Context):
    return providers.provider_out(await providers.create_provider(ctx.project_id, ctx.api_key_id, ctx.body))


@endpoint(
    "GET",
    "/notification-providers/{provider_id}",
    summary="A notification provider (config masked)",
    tag="notifications",
    response=ProviderOut,
)
async def get_provider(ctx: Context, provider_id: str):
    return providers.provider_out(
        await providers.get_provider(ctx.project_id, as_uuid(provider_id, "provider"))
    )


@endpoint(
    "PATCH",
    "/notification-providers/{provider_id}",
    summary="Change a provider's name, config or enabled",
    tag="notifications",
    body=ProviderPatch,
    response=ProviderOut,
)
async def patch_provider(ctx: Context, provider_id: str):
    row = await providers.update_provider(
        ctx.project_id, ctx.api_key_id, as_uuid(provider_id, "provider"), ctx.body
    )
    return providers.provider_out(row)


@endpoint(
    "DELETE",
    "/notification-providers/{provider_id}",
    summary="Delete a notification provider",
    tag="notifications",
    status=204,
)
async def delete_provider(ctx: Context, provider_id: str):
    await providers.delete_provider(ctx.project_id, ctx.api_key_id, as_uuid(provider_id, "provider"))


@endpoint(
    "POST",
    "/notification-providers/{provider_id}/test",
    summary="Send a sample alert through a provider now",
    tag="notifications",
    response=ProviderTestResult,
)
async def test_provider(ctx: Context, provider_id: str):
    return ProviderTestResult.model_validate(
        await providers.send_test_notification(ctx.project_id, as_uuid(provider_id, "notification provider"))
    )
