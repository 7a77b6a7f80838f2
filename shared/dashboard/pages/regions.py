"""Regions: per location, checks, uptime, mean and p95 latency and the failing monitors (the seed's regional
dashboard), over a chosen window, as GET /regions answers it; and each region's pipeline health (its Redis, its
connector's heartbeat, its check functions, its backlog) as GET /regions/health answers it."""

from __future__ import annotations

import asyncio

from shared.dashboard.web import PageContext, page

WINDOWS = ((1, "1 h"), (24, "24 h"), (168, "7 d"), (720, "30 d"))
# A region's health shown with the status colours the monitors use
HEALTH_STATUS_CLASS = {"ok": "up", "degraded": "degraded", "down": "down"}


@page("/regions")
async def regions(ctx: PageContext):
    hours = ctx.query("hours").get("hours", "24")
    # the figures come from the database, the health from each region's Redis: asked at once
    report, health = await asyncio.gather(
        ctx.api.get("/regions", {"hours": hours}), ctx.api.get("/regions/health")
    )
    shown = {region["location"] for region in report["data"]}
    return ctx.render(
        "regions.html",
        report=report,
        health=health,
        health_by_location={region["location"]: region for region in health["data"]},
        health_only=[region for region in health["data"] if region["location"] not in shown],
        health_class=HEALTH_STATUS_CLASS,
        windows=WINDOWS,
        hours=hours,
        nav="/regions",
    )
