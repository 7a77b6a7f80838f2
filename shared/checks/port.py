"""TCP and UDP port checks over IPv4 and IPv6: connect (or send a datagram), then judge what happened.
Used by the check-port function, through the check table."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from shared.checks.base import MAX_CHECK_SECONDS, CheckConfig
from shared.checks.egress import source_address_for
from shared.models import CheckJob, CheckOutcome
from shared.ssrf import BlockedTarget, UnresolvableTarget, check_host_target, resolve_target

PortEvent = Literal["open", "refused", "silent", "reply", "unreachable"]


class PortConfig(CheckConfig):
    target: str
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    timeout_seconds: int = Field(default=10, ge=1, le=MAX_CHECK_SECONDS)
    # "Upside down": for TCP, a port that accepts connections is the failure.
    expect_closed: bool = False
    udp_payload: str = Field(default="", max_length=1024)
    require_reply: bool = False

    @field_validator("target")
    @classmethod
    def _host(cls, target: str) -> str:
        return check_host_target(target)

    @field_validator("protocol", mode="before")
    @classmethod
    def _lower(cls, protocol: object) -> object:
        return protocol.lower() if isinstance(protocol, str) else protocol

    @field_validator("expect_closed")
    @classmethod
    def _tcp_only(cls, expect_closed: bool, info: ValidationInfo) -> bool:
        if expect_closed and info.data.get("protocol") == "udp":
            raise ValueError("applies to TCP only; a silent UDP port cannot be told from a closed one")
        return expect_closed


def judge_port(event: PortEvent, config: PortConfig, detail: str = "") -> tuple[str, str, bool]:
    """Pure: (status, message, unconfirmed) from what the socket saw."""
    where = f"{config.protocol.upper()} port {config.port}"
    if config.protocol == "tcp":
        return (*_judge_tcp(event, config, where, detail), False)
    return _judge_udp(event, config, where, detail)


def _judge_tcp(event: PortEvent, config: PortConfig, where: str, detail: str) -> tuple[str, str]:
    if config.expect_closed:
        if event == "open":
            return "down", f"{where} accepts connections, but it should be closed"
        return "up", f"{where} is closed, as expected ({detail or event})"
    if event == "open":
        return "up", f"{where} is open"
    if event == "refused":
        return "down", f"{where} refused the connection"
    if event == "silent":
        return "timeout", f"{where}: no answer within {config.timeout_seconds}s"
    return "down", f"{where} is unreachable ({detail})"


def _judge_udp(event: PortEvent, config: PortConfig, where: str, detail: str) -> tuple[str, str, bool]:
    if event == "reply":
        return "up", f"{where} replied", False
    if event == "refused":
        return "down", f"{where} is closed (ICMP port unreachable)", False
    if event == "silent":
        if config.require_reply:
            return "down", f"{where}: no reply within {config.timeout_seconds}s (a reply is required)", False
        return (
            "up",
            f"{where}: no reply within {config.timeout_seconds}s; open or filtered (unconfirmed)",
            True,
        )
    return "down", f"{where} is unreachable ({detail})", False


async def probe_tcp(address: str, port: int, seconds: float) -> tuple[PortEvent, str]:
    try:
        async with asyncio.timeout(seconds):
            source = source_address_for(address)
            _, writer = await asyncio.open_connection(
                address, port, local_addr=(source, 0) if source else None
            )
    except TimeoutError:
        return "silent", ""
    except ConnectionRefusedError:
        return "refused", "connection refused"
    except OSError as error:
        return "unreachable", error.strerror or str(error)
    writer.close()
    return "open", ""


async def probe_udp(address: str, port: int, payload: bytes, seconds: float) -> tuple[PortEvent, str]:
    """A connected UDP socket, so the kernel reports an ICMP port-unreachable reply as ECONNREFUSED."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        source = source_address_for(address)
        if source:
            sock.bind((source, 0))
        try:
            async with asyncio.timeout(seconds):
                await loop.sock_connect(sock, (address, port))
                await loop.sock_sendall(sock, payload)  # an empty payload still sends one (empty) datagram
                reply = await loop.sock_recv(sock, 65535)
        except TimeoutError:
            return "silent", ""
        except ConnectionRefusedError:
            return "refused", "ICMP port unreachable"
        except OSError as error:
            return "unreachable", error.strerror or str(error)
    return "reply", f"{len(reply)} bytes"


async def check_port(job: CheckJob) -> CheckOutcome:
    config = PortConfig.model_validate({**job.config, "target": job.target})
    started = time.perf_counter()
    try:
        address = str((await resolve_target(config.target, config.port))[0])
    except BlockedTarget as error:
        return CheckOutcome(status="error", message=f"Target blocked: {error}")
    except UnresolvableTarget as error:
        return CheckOutcome(status="down", message=str(error))
    dns_ms = round((time.perf_counter() - started) * 1000, 3)
    connect_started = time.perf_counter()
    if config.protocol == "tcp":
        event, detail = await probe_tcp(address, config.port, config.timeout_seconds)
    else:
        payload = config.udp_payload.encode()
        event, detail = await probe_udp(address, config.port, payload, config.timeout_seconds)
    elapsed_ms = round((time.perf_counter() - connect_started) * 1000, 3)
    status, message, unconfirmed = judge_port(event, config, detail)
    details = {"address": address, "protocol": config.protocol, "port": config.port, "event": event}
    if unconfirmed:
        details["unconfirmed"] = True
    return CheckOutcome(
        status=status,
        message=message,
        response_time_ms=round(elapsed_ms),
        dns_ms=dns_ms,
        connect_ms=elapsed_ms if config.protocol == "tcp" and event == "open" else None,
        details=details,
    )
