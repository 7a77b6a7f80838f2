"""Synthetic tests: Playwright scripts run in a sandboxed subprocess against one warm Chromium, artifacts in S3.
Used by the check-synthetic function and the API's synthetic test endpoints."""
