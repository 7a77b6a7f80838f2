"""Which local address checks send from: a region's egress IP on a multi-homed host (SC_SOURCE_ADDRESS).
Used by every network check (http, ping, port)."""

from __future__ import annotations

from shared.settings import get_settings


def source_address_for(target_ip: str) -> str | None:
    """The configured source address when it is of the target's family (IPv4 or IPv6), else the OS's choice."""
    configured = get_settings().source_address
    if configured is None or (configured.version == 6) != (":" in target_ip):
        return None
    return str(configured)
