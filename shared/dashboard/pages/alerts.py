"""Alerts: every delivery of every alert to every provider, newest first, filtered as GET /alerts allows."""

from __future__ import annotations

from shared.dashboard.web import PageContext, page

ALERT_FILTERS = ("monitorId", "status", "kind", "from", "to", "page")
DELIVERY_STATUSES = ("pending", "sending", "sent", "partial", "failed", "suppressed")
ALERT_KINDS = ("failure", "recovery", "ssl_expiring", "ssl_expired")


@page("/alerts")
async def alert_history(ctx: PageContext):
    filters = ctx.query(*ALERT_FILTERS)
    alerts = await ctx.api.get("/alerts", {**filters, "limit": 50})
    return ctx.render(
        "alerts.html",
        alerts=alerts,
        filters=filters,
        statuses=DELIVERY_STATUSES,
        kinds=ALERT_KINDS,
        nav="/alerts",
    )
