"""ICMP ping through icmplib (never a shell): unprivileged sockets where allowed, raw sockets otherwise.
Used by the check-ping function, through the check table."""

from __future__ import annotations

import logging

import icmplib
from pydantic import Field, field_validator, model_validator

from shared.checks.base import MAX_CHECK_SECONDS, CheckConfig
from shared.checks.egress import source_address_for
from shared.models import CheckJob, CheckOutcome
from shared.ssrf import BlockedTarget, UnresolvableTarget, check_host_target, resolve_target

log = logging.getLogger(__name__)
PERMISSION_HINT = (
    "ICMP sockets are not permitted here: give the function CAP_NET_RAW (raw sockets), "
    "or allow unprivileged ICMP with sysctl net.ipv4.ping_group_range (e.g. '0 2147483647')"
)


class PingConfig(CheckConfig):
    target: str
    count: int = Field(default=3, ge=1, le=20)
    interval_seconds: float = Field(default=0.5, ge=0.1, le=5)
    # How long to wait for the replies once the last request is sent.
    timeout_seconds: int = Field(default=5, ge=1, le=MAX_CHECK_SECONDS)
    # Up while packet loss stays below this; the default 100 means any reply counts as up.
    max_packet_loss_percent: int = Field(default=100, ge=1, le=100)

    @field_validator("target")
    @classmethod
    def _host(cls, target: str) -> str:
        return check_host_target(target)

    @model_validator(mode="after")
    def _fits_one_call(self) -> PingConfig:
        if self.count * self.interval_seconds + self.timeout_seconds > MAX_CHECK_SECONDS:
            raise ValueError(
                f"count × intervalSeconds + timeoutSeconds must be at most {MAX_CHECK_SECONDS} s"
            )
        return self

    @classmethod
    def attempt_seconds(cls, config: dict) -> float:
        fields = cls.model_fields
        count = config.get("count") or fields["count"].default
        interval = config.get("intervalSeconds") or fields["interval_seconds"].default
        return float(count * interval + super().attempt_seconds(config))


def judge_ping(sent: int, received: int, max_loss_percent: int) -> tuple[str, str]:
    """Pure: the verdict from packet counts."""
    loss = 100.0 * (sent - received) / sent if sent else 100.0
    if received and loss < max_loss_percent:
        return "up", f"{received}/{sent} replies, {loss:.0f}% packet loss"
    if not received:
        return "down", f"No reply to {sent} ICMP echo request{'s' if sent != 1 else ''} (100% packet loss)"
    return "down", f"{loss:.0f}% packet loss ({received}/{sent} replies), limit is below {max_loss_percent}%"


# Which socket kind works on this host, learnt on first use: None (unknown), False (unprivileged), True (raw).
_privileged_mode: bool | None = None


async def _ping(address: str, config: PingConfig) -> icmplib.Host:
    global _privileged_mode
    modes = [_privileged_mode] if _privileged_mode is not None else [False, True]
    for privileged in modes:
        try:
            host = await icmplib.async_ping(
                address,
                count=config.count,
                interval=config.interval_seconds,
                timeout=config.timeout_seconds,
                privileged=privileged,
                source=source_address_for(address),
            )
        except icmplib.SocketPermissionError:
            continue
        _privileged_mode = privileged
        return host
    raise PermissionError(PERMISSION_HINT)


async def check_ping(job: CheckJob) -> CheckOutcome:
    config = PingConfig.model_validate({**job.config, "target": job.target})
    try:
        address = str((await resolve_target(config.target))[0])
        host = await _ping(address, config)
    except BlockedTarget as error:
        return CheckOutcome(status="error", message=f"Target blocked: {error}")
    except UnresolvableTarget as error:
        return CheckOutcome(status="down", message=str(error))
    except PermissionError as error:
        return CheckOutcome(status="error", message=str(error))
    except icmplib.ICMPLibError as error:
        return CheckOutcome(status="down", message=f"Ping failed: {type(error).__name__}: {error}")
    status, message = judge_ping(host.packets_sent, host.packets_received, config.max_packet_loss_percent)
    return CheckOutcome(
        status=status,
        message=message,
        response_time_ms=round(host.avg_rtt) if host.packets_received else None,
        details={
            "address": address,
            "packetsSent": host.packets_sent,
            "packetsReceived": host.packets_received,
            "packetLossPercent": round(host.packet_loss * 100, 1),
            "minRttMs": host.min_rtt,
            "avgRttMs": host.avg_rtt,
            "maxRttMs": host.max_rtt,
        },
    )
