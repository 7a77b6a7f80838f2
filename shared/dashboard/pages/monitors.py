"""The monitor list: every monitor of the project, filtered, searched, sorted and paged by the API, updated live."""

from __future__ import annotations

import asyncio

from shared.checks import CHECK_TYPES
from shared.dashboard.web import PageContext, page

LIST_FILTERS = ("search", "status", "type", "tag", "sort", "page")
COUNT_FILTERS = ("search", "type", "tag")
PAGE_SIZE = 50
STATUSES = ("up", "down", "degraded", "paused", "pending", "unknown", "error")
SORTS = (  # the API's sort keys; no sort is its default, newest first
    ("", "Newest first"),
    ("createdAt", "Oldest first"),
    ("name", "Name A–Z"),
    ("-name", "Name Z–A"),
    ("status", "Status"),
    ("-lastCheckAt", "Checked most recently"),
    ("type", "Type"),
)
MONITOR_TYPES = tuple(CHECK_TYPES)


@page("/")
async def monitor_list(ctx: PageContext):
    filters = ctx.query(*LIST_FILTERS)
    listing, counts = await asyncio.gather(
        ctx.api.get("/monitors", {**filters, "limit": PAGE_SIZE, "include": "summary"}),
        ctx.api.get("/monitors/summary", ctx.query(*COUNT_FILTERS)),
    )
    values = {
        "listing": listing,
        "counts": counts,
        "filters": filters,
        "statuses": STATUSES,
        "sorts": SORTS,
        "monitor_types": MONITOR_TYPES,
        "nav": "/",
    }
    if ctx.request.query_params.get("fragment") == "rows":
        return ctx.render("monitors/rows.html", **values)
    return ctx.render("monitors/list.html", **values)
