"""SSRF protection: a table of addresses and URL spellings, resolution that vets every answer, and the toggle."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from shared.ssrf import (
    BlockedTarget,
    blocked_reason,
    check_host_target,
    check_url_target,
    parse_ip,
    resolve_target,
)

# (URL as a user might type it, the reason fragment it must be refused with)
BLOCKED_URLS = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.255.255.254:8080/x", "loopback"),
    ("http://2130706433/", "loopback"),  # decimal
    ("http://017700000001/", "loopback"),  # octal
    ("http://0x7f000001/", "loopback"),  # hex
    ("http://0x7f.0x0.0x0.0x1/", "loopback"),  # dotted hex
    ("http://0177.1/", "loopback"),  # octal, short form
    ("http://0300.0250.1/", "RFC 1918"),  # 192.168.0.1 in octal
    ("http://127.1/", "loopback"),  # short form
    ("http://127.0.1/", "loopback"),
    ("http://0/", "unspecified"),
    ("http://0.0.0.0:80/", "unspecified"),
    ("http://10.0.0.1/", "RFC 1918"),
    ("http://10.255.255.255/", "RFC 1918"),
    ("http://172.16.0.1/", "RFC 1918"),
    ("http://172.31.255.1/", "RFC 1918"),
    ("http://192.168.1.1/", "RFC 1918"),
    ("http://3232235777/", "RFC 1918"),  # 192.168.1.1 as a decimal
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://0xa9fea9fe/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://100.127.255.254/", "carrier-grade NAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250:1900/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://192.0.2.10/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://192.0.0.8/", "IETF"),
    ("http://[::1]/", "IPv6 loopback"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "IPv6 loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fc00::1]/", "unique local"),
    ("http://[fd12:3456:789a::1]/", "unique local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "zone"),
    ("http://[fec0::1]/", "site-local"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[::ffff:127.0.0.1]/", "loopback, embedded"),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/", "loopback, embedded"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://[::ffff:10.1.2.3]/", "RFC 1918), embedded IPv4 10.1.2.3"),
    ("http://[::127.0.0.1]/", "loopback, embedded"),  # IPv4-compatible
    ("http://[::10.0.0.1]/", "RFC 1918), embedded IPv4 10.0.0.1"),
    ("http://[64:ff9b::7f00:1]/", "loopback, embedded"),  # NAT64
    ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("http://[64:ff9b:1::1]/", "NAT64 local-use"),
    ("http://[2002:7f00:1::]/", "loopback, embedded"),  # 6to4
    ("http://[2002:c0a8:101::1]/", "RFC 1918), embedded IPv4 192.168.1.1"),
    ("http://localhost/", "loopback name"),
    ("http://LOCALHOST./", "loopback name"),
    ("http://api.localhost:3000/", "loopback name"),
    ("https://127.0.0.1:443/path?q=1", "loopback"),
]

ALLOWED_URLS = [
    "http://93.184.216.34/",
    "http://1.1.1.1/",
    "http://8.8.8.8:53/",
    "http://16843009/",  # 1.1.1.1 as a decimal: allowed, once normalised
    "http://[2606:4700:4700::1111]/",
    "http://[::ffff:8.8.8.8]/",  # a mapped public address is public
    "http://[64:ff9b::808:808]/",  # NAT64 of 8.8.8.8
    "https://example.com/",
    "https://bücher.example/",
    "http://sub.domain.example.org:8443/a/B?C=D",
    "http://100.63.255.255/",  # just below CGNAT
    "http://172.32.0.1/",  # just above 172.16/12
]


def test_the_table_is_big_enough():
    assert len(BLOCKED_URLS) + len(ALLOWED_URLS) >= 40


@pytest.mark.parametrize(("url", "reason"), BLOCKED_URLS)
def test_internal_targets_are_refused_on_save_in_every_spelling(internal_targets_blocked, url, reason):
    with pytest.raises(BlockedTarget) as refused:
        check_url_target(url)
    assert reason in str(refused.value)
    assert "ALLOW_INTERNAL_TARGETS" in str(refused.value)


@pytest.mark.parametrize("url", ALLOWED_URLS)
def test_public_targets_pass(internal_targets_blocked, url):
    assert check_url_target(url).host


@pytest.mark.parametrize(("url", "_reason"), BLOCKED_URLS)
def test_allow_internal_targets_lifts_the_protection(internal_targets, url, _reason):
    assert check_url_target(url).host


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_INFO", "http:// or https://"),
        ("http:///nohost", "http:// or https://"),
        ("http://user:pass@example.com/", "credentials"),
        ("http://256.0.0.1/", "Invalid IPv4"),
        ("http://256.1/", "out of range"),
        ("http://08.1/", "neither a valid IPv4"),
        ("http://0177.0.0.1/", "not a valid URL"),  # httpx refuses four-part octal outright
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/a\r\nHost: evil", "control characters"),
        ("http://1.2.3.4.5/", "last label is a number"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(internal_targets_blocked, url, fragment):
    with pytest.raises(ValueError) as refused:
        check_url_target(url)
    assert fragment in str(refused.value)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "[2606:4700:4700::1111]",
        "bücher.example",
        "a-b.c_d.e",
    ],
)
def test_ping_and_port_targets_are_hostnames_or_ip_literals(internal_targets_blocked, host):
    assert check_host_target(host) == host


@pytest.mark.parametrize(
    "host",
    [
        "http://example.com",
        "example.com:80",
        "example.com/path",
        "-c 1 example.com",
        "example.com; rm -rf /",
        "$(reboot)",
        "exa mple.com",
        "",
        "a" * 254,
        "-leading.example",
    ],
)
def test_anything_else_is_not_a_ping_or_port_target(internal_targets_blocked, host):
    with pytest.raises(ValueError):
        check_host_target(host)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("1.1.1.1.", "1.1.1.1"),
        ("[::1]", "::1"),
    ],
)
def test_ipv4_spellings_are_normalised_before_judging(spelling, address):
    assert parse_ip(spelling) == ipaddress.ip_address(address)


def test_names_are_not_addresses():
    assert parse_ip("example.com") is None
    assert blocked_reason(ipaddress.ip_address("93.184.216.34")) is None


def _answering(monkeypatch, addresses: list[str]):
    """This machine has no DNS: stand in for the resolver with a fixed answer, and count the lookups."""
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):  # resolve_target calls it in its own DNS pool
        lookups.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_a_name_is_refused_if_any_of_its_addresses_is_internal(internal_targets_blocked, monkeypatch):
    _answering(monkeypatch, ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(BlockedTarget) as refused:
        asyncio.run(resolve_target("mixed.example", 80))
    assert "'mixed.example' resolves to 10.0.0.7" in str(refused.value)


def test_a_name_resolving_to_public_addresses_passes_in_order(internal_targets_blocked, monkeypatch):
    _answering(monkeypatch, ["2606:4700::1", "93.184.216.34", "93.184.216.34"])
    addresses = asyncio.run(resolve_target("public.example", 443))
    assert [str(a) for a in addresses] == ["2606:4700::1", "93.184.216.34"]


def test_a_name_resolving_to_a_mapped_loopback_is_refused(internal_targets_blocked, monkeypatch):
    _answering(monkeypatch, ["::ffff:127.0.0.1"])
    with pytest.raises(BlockedTarget):
        asyncio.run(resolve_target("sneaky.example", 80))


def test_localhost_resolves_from_the_hosts_file_and_is_refused(internal_targets_blocked):
    with pytest.raises(BlockedTarget):
        asyncio.run(resolve_target("localhost", 80))


def test_literals_never_touch_the_resolver(internal_targets_blocked, monkeypatch):
    lookups = _answering(monkeypatch, ["93.184.216.34"])
    assert [str(a) for a in asyncio.run(resolve_target("1.1.1.1", 80))] == ["1.1.1.1"]
    with pytest.raises(BlockedTarget):
        asyncio.run(resolve_target("0x7f.1", 80))
    assert lookups == []
