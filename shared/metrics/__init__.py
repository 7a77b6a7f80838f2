"""The metrics function's work: Prometheus families for monitors (monitors.py) and the pipeline, and the app."""
