"""The api function's status page endpoints (tag "status-pages"): the public pages a project publishes, their
groups of monitors. The status function serves them; this is where they are managed."""

from __future__ import annotations

from shared.api.framework import Context, LazyModule, as_uuid, endpoint
from shared.api.requests import PageQuery, StatusPageCreate, StatusPagePatch
from shared.api.schemas import StatusPageOut, StatusPagePage

status_pages = LazyModule("shared.api.services.status_pages")

TAKEN = "The slug (unique across projects) or the custom domain is another page's; the field is named"


@endpoint(
    "GET",
    "/status-pages",
    summary="List status pages, newest first",
    tag="status-pages",
    query=PageQuery,
    response=StatusPagePage,
)
async def list_status_pages(ctx: Context):
    return await status_pages.list_pages(ctx.project_id, ctx.query)


@endpoint(
    "POST",
    "/status-pages",
    summary="Create a status page: slug, title, groups of the project's monitors, custom domain",
    tag="status-pages",
    body=StatusPageCreate,
    response=StatusPageOut,
    status=201,
    conflict=TAKEN,
)
async def create_status_page(ctx: Context):
    return await status_pages.create_page(ctx.project_id, ctx.api_key_id, ctx.body)


@endpoint(
    "GET",
    "/status-pages/{status_page_id}",
    summary="A status page and its groups",
    tag="status-pages",
    response=StatusPageOut,
)
async def get_status_page(ctx: Context, status_page_id: str):
    return await status_pages.get_page(ctx.project_id, as_uuid(status_page_id, "status page"))


@endpoint(
    "PUT",
    "/status-pages/{status_page_id}",
    summary="Replace a status page",
    tag="status-pages",
    body=StatusPageCreate,
    response=StatusPageOut,
    conflict=TAKEN,
)
async def replace_status_page(ctx: Context, status_page_id: str):
    return await status_pages.replace_page(
        ctx.project_id, ctx.api_key_id, as_uuid(status_page_id, "status page"), ctx.body
    )


@endpoint(
    "PATCH",
    "/status-pages/{status_page_id}",
    summary="Change some of a status page's fields (groups, when given, replace its groups)",
    tag="status-pages",
    body=StatusPagePatch,
    response=StatusPageOut,
    conflict=TAKEN,
)
async def patch_status_page(ctx: Context, status_page_id: str):
    return await status_pages.patch_page(
        ctx.project_id, ctx.api_key_id, as_uuid(status_page_id, "status page"), ctx.body
    )


@endpoint(
    "DELETE",
    "/status-pages/{status_page_id}",
    summary="Delete a status page with its incidents",
    tag="status-pages",
    status=204,
)
async def delete_status_page(ctx: Context, status_page_id: str):
    await status_pages.delete_page(ctx.project_id, ctx.api_key_id, as_uuid(status_page_id, "status page"))
