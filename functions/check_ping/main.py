"""check-ping: runs a batch of ping (ICMP) check jobs from the connector, or one check given directly."""

from shared.pipeline.check import check_function_handler

handle = check_function_handler()
