"""check-synthetic: runs a batch of synthetic_test jobs from the connector, or one trial (a config run once, not stored)."""

from shared.pipeline.check import check_function_handler
from shared.settings import get_settings

# Journeys run a few at a time (SYNTHETIC_CONCURRENCY), each group stored before the next starts.
handle = check_function_handler(group_size=lambda: get_settings().synthetic_concurrency)
