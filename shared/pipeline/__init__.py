"""What each pipeline function does (schedule, check, aggregate, alert, cleanup, rollups) and the connector's batch protocol."""
