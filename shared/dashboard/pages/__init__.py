"""The dashboard's pages, one module per area; importing this package registers them all in web.PAGES."""

from shared.dashboard.pages import alerts, monitors, regions  # noqa: F401
