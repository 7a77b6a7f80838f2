"""The metrics function's work: Prometheus metric families of the monitors and of the pipeline itself."""
