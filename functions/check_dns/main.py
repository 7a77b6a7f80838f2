"""check-dns: runs a batch of DNS record check jobs from the connector, or one trial (a config run once, not stored)."""

from shared.pipeline.check import check_function_handler

handle = check_function_handler()
