"""The dashboard's pages, one module per area; importing this package registers them all in web.PAGES."""

# isort: off
# monitor_forms first: routes match in registration order, and its /monitors/new must come before a detail
# page's /monitors/{monitor_id}, which would otherwise take "new" for an id (detail's path also only takes a UUID).
from shared.dashboard.pages import monitor_forms  # noqa: F401

# isort: on
from shared.dashboard.pages import alerts, detail, monitors, regions, settings  # noqa: F401
