"""Regions: per location, checks, uptime, mean and p95 latency and the failing monitors (the seed's regional
dashboard), over a chosen window, as GET /regions answers it."""

from __future__ import annotations

from shared.dashboard.web import PageContext, page

WINDOWS = ((1, "1 h"), (24, "24 h"), (168, "7 d"), (720, "30 d"))


@page("/regions")
async def regions(ctx: PageContext):
    hours = ctx.query("hours").get("hours", "24")
    report = await ctx.api.get("/regions", {"hours": hours})
    return ctx.render("regions.html", report=report, windows=WINDOWS, hours=hours, nav="/regions")
