"""Synthetic tests: Playwright scripts run in a sandboxed subprocess against one warm Chromium, artifacts in S3."""
