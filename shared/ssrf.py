"""SSRF protection: normalise a target, resolve it, and refuse internal addresses unless ALLOW_INTERNAL_TARGETS.
Used by the check functions (every target) and by the API and alert function (notification URLs)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import lru_cache, partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.settings import get_settings

if TYPE_CHECKING:
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_ALLOW_HINT = "internal targets are blocked; set ALLOW_INTERNAL_TARGETS=true to allow them"

# Checked in order, so the most specific reason wins (169.254.169.254 before the rest of link-local).
_BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("169.254.169.254/32", "link-local (cloud metadata endpoint)"),
        ("169.254.0.0/16", "link-local"),
        ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)
_BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(network), reason)
    for network, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "IPv6 loopback"),
        ("64:ff9b:1::/48", "NAT64 local-use"),
        ("100::/64", "reserved (discard-only)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local (ULA)"),
        ("fe80::/10", "IPv6 link-local"),
        ("fec0::/10", "IPv6 site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_WHITESPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_NUMBER_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class BlockedTarget(ValueError):
    """The target is, or resolves to, an address that internal-target protection refuses."""


class UnresolvableTarget(OSError):
    """DNS gave no address for the name."""


def internal_targets_allowed() -> bool:
    return get_settings().allow_internal_targets


def _parse_ipv4_number(part: str) -> int:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return int(lowered[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def parse_ipv4_spelling(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton's spellings, as browsers and libc accept them: '2130706433', '0x7f.1', '0177.0.0.1', '127.1'."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts or len(parts) > 4 or not all(_NUMBER_PART.match(p) for p in parts):
        return None
    try:
        numbers = [_parse_ipv4_number(p) for p in parts]
    except ValueError:  # '08' looks octal but is not
        raise ValueError(f"'{host}' is neither a valid IPv4 address nor a hostname") from None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"'{host}' is neither a valid IPv4 address nor a hostname (a part is out of range)")
    value = 0
    for n in leading:
        value = value * 256 + n
    value = value * 256 ** (5 - len(numbers)) + last
    return ipaddress.IPv4Address(value)


def parse_ip(host: str) -> IPAddress | None:
    """The address a host spells, in any accepted form ([v6], v6, odd IPv4 spellings); None for a name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare.replace("%25", "%"))
        except ValueError:
            raise ValueError(f"'{host}' is not a valid IPv6 address") from None
    return parse_ipv4_spelling(bare)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries: mapped, compatible, NAT64, 6to4 or Teredo."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address is internal (loopback, RFC 1918, link-local, ...), or None if it is a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "IPv6 address with a zone (link-scoped)"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"{inner}, embedded IPv4 {embedded}" if inner else None
        table: tuple = _BLOCKED_V6
    else:
        table = _BLOCKED_V4
    for network, reason in table:
        if ip in network:
            return reason
    return None if ip.is_global else "not globally routable"


def check_hostname_syntax(host: str) -> str:
    """A DNS name (IDN allowed) or an IP literal; returns the ASCII form. Nothing else: no ports, paths, spaces."""
    if not host or len(host) > 253:
        raise ValueError("must be a hostname or an IP address of at most 253 characters")
    if parse_ip(host) is not None:
        return host
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise ValueError(f"'{host}' is not a valid hostname") from None
    labels = ascii_host.rstrip(".").split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"'{host}' is not a valid hostname or IP address")
    if _NUMBER_PART.match(labels[-1]):
        raise ValueError(f"'{host}' is not a valid hostname (the last label is a number)")
    return ascii_host


def check_literal_host(host: str) -> None:
    """Save-time check without DNS: refuses internal IP literals (in any spelling) and localhost names."""
    if internal_targets_allowed():
        return
    ip = parse_ip(host)
    if ip is not None:
        reason = blocked_reason(ip)
        if reason:
            raise BlockedTarget(f"'{host}' is {ip}: {reason}; {_ALLOW_HINT}")
        return
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise BlockedTarget(f"'{host}' is a loopback name; {_ALLOW_HINT}")


def check_host_target(host: str) -> str:
    """A ping/port target: a hostname or an IP literal, and not an internal one."""
    check_hostname_syntax(host)
    check_literal_host(host)
    return host


def check_url_target(url: str, allow_userinfo: bool = False) -> httpx.URL:
    """An http(s) URL whose host is a valid name or IP and not an internal literal; parsed as httpx will send it."""
    return _vetted_url(url, allow_userinfo, internal_targets_allowed())


# Every check vets its URL twice (its config's validation, then the request), ~140 µs each uncached. The cache
# must hold every URL one check process serves, or a schedule's cyclic order evicts each entry just before its
# next use and nothing ever hits: 4,096 entries did that at 20,000 monitors (bench/README.md, issue 23). An entry
# is ~600 bytes, so the bound is ~20 MB.
@lru_cache(maxsize=32_768)
def _vetted_url(url: str, allow_userinfo: bool, internal_allowed: bool) -> httpx.URL:
    """Cached: every check re-validates its stored config, and parsing a URL costs more than the cache lookup."""
    import httpx  # here: functions that never vet a URL (schedule, aggregate, cleanup) skip its import cost

    if _WHITESPACE_OR_CONTROL.search(url):
        raise ValueError("must not contain spaces or control characters (percent-encode them)")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as error:
        raise ValueError(f"is not a valid URL ({error})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parsed.userinfo and not allow_userinfo:
        raise ValueError("must not carry credentials (user:password@); use the auth settings instead")
    # Parsers disagree on odd URLs ('http://a\\@b/'); refuse any whose host the standard library reads otherwise.
    if (urlsplit(url).hostname or "").lower() != parsed.host.lower().strip("[]"):
        raise ValueError("is ambiguous: its host reads differently to different URL parsers")
    check_hostname_syntax(parsed.host)
    if not internal_allowed:
        check_literal_host(parsed.host)
    return parsed


@lru_cache(maxsize=1)
def dns_executor() -> ThreadPoolExecutor:
    """DNS lookups get threads of their own (DNS_LOOKUP_THREADS): getaddrinfo blocks a thread for as long as a
    resolver takes, and in the loop's default pool (a handful of threads) a burst of slow lookups from hundreds of
    concurrent checks would stall everything else that pool runs. Lookups past the bound wait their turn."""
    return ThreadPoolExecutor(max_workers=get_settings().dns_lookup_threads, thread_name_prefix="dns")


async def system_lookup(host: str, port: int | None) -> list[str]:
    """The addresses DNS (and /etc/hosts) gives for a name, as getaddrinfo orders them."""
    try:
        infos = await asyncio.get_running_loop().run_in_executor(
            dns_executor(), partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        )
    except socket.gaierror as error:
        raise UnresolvableTarget(f"DNS lookup for '{host}' failed: {error.strerror or error}") from None
    return [info[4][0] for info in infos]


# The one DNS seam: every name the SSRF rules judge is looked up here, for checks, saves and alert sends alike.
# Tests swap it for a scripted answer (this machine has no DNS server, and a rebinding one cannot be run here).
lookup: Callable[[str, int | None], Awaitable[list[str]]] = system_lookup


async def resolve_target(host: str, port: int | None = None) -> list[IPAddress]:
    """Every address of the host, in connection order; refuses them all if any one is internal.

    Refusing on any (not only the one we would use) stops a name that mixes a public and a private address.
    Callers then connect to these addresses themselves, so a second DNS answer (rebinding) is never used.
    """
    literal = parse_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        answers = await lookup(host.strip("[]"), port)
        addresses = list(dict.fromkeys(ipaddress.ip_address(answer) for answer in answers))
        if not addresses:
            raise UnresolvableTarget(f"DNS lookup for '{host}' returned no address")
    if not internal_targets_allowed():
        for address in addresses:
            reason = blocked_reason(address)
            if reason:
                shown = f"'{host}' resolves to {address}" if literal is None else f"'{host}' is {address}"
                raise BlockedTarget(f"{shown}: {reason}; {_ALLOW_HINT}")
    return addresses


_BLOCKING_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ssrf-resolve")


def resolve_target_blocking(host: str, port: int | None = None, timeout: float = 10.0) -> list[IPAddress]:
    """resolve_target for synchronous callers (a save's validation, a library's socket lookup during a send).

    It runs on a thread of its own with its own event loop, so it works whether or not the caller's thread
    has a loop running; a lookup slower than `timeout` counts as unresolvable.
    """
    future = _BLOCKING_RESOLVER.submit(asyncio.run, resolve_target(host, port))
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        raise UnresolvableTarget(f"DNS lookup for '{host}' took longer than {timeout:g} s") from None
