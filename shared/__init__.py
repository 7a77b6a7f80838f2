"""Common code for every function: models, database, streams, checks, aggregation, alerts, security."""
