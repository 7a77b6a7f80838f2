"""Alerts: every delivery of every alert to every provider, newest first, filtered as GET /alerts allows."""

from __future__ import annotations

from typing import get_args

from shared.dashboard.web import PageContext, page
from shared.models import AlertDeliveryStatus, AlertKind

ALERT_FILTERS = ("monitorId", "status", "kind", "from", "to", "page")
DELIVERY_STATUSES = get_args(AlertDeliveryStatus)
ALERT_KINDS = get_args(AlertKind)


@page("/alerts")
async def alert_history(ctx: PageContext):
    filters = ctx.query(*ALERT_FILTERS)
    asked = dict(filters)
    if len(asked.get("to", "")) == len("YYYY-MM-DD"):  # the form's date: through the end of that day
        asked["to"] += "T23:59:59.999999+00:00"
    alerts = await ctx.api.get("/alerts", {**asked, "limit": 50})
    return ctx.render(
        "alerts.html",
        alerts=alerts,
        filters=filters,
        statuses=DELIVERY_STATUSES,
        kinds=ALERT_KINDS,
        nav="/alerts",
    )
