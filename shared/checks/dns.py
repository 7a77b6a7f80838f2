"""DNS record checks with dnspython: one query of a record type to the configured resolvers (or the system's),
over UDP (falling back to TCP for a truncated answer) or TCP, judged against expected values as a set.
Used by the check-dns function, through the check table."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from shared.checks.base import MAX_CHECK_SECONDS, CheckConfig
from shared.models import CheckJob, CheckOutcome
from shared.ssrf import blocked_reason, check_hostname_syntax, internal_targets_allowed, parse_ip

if TYPE_CHECKING:
    import dns.message

RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "CAA", "PTR"]
Rcode = Literal["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", "YXDOMAIN", "NOTAUTH"]
MatchMode = Literal["all", "any", "none", "regex"]
DNS_PORT = 53
_NAME_TYPES = {"CNAME", "NS", "PTR"}


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_resolver(text: str) -> tuple[str, int]:
    """ "ip", "ip:port" or "[ipv6]:port" → (ip, port); a name is refused (finding it would need a resolver)."""
    text = text.strip()
    ip = _ip(text)  # a bare address; an IPv6 one's colons are not a port
    if ip is not None:
        return ip.compressed, DNS_PORT
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        port_text = rest[1:] if closed and rest.startswith(":") else None
    else:
        host, _, port_text = text.rpartition(":")
    ip = _ip(host) if port_text is not None else None
    if ip is None or not port_text.isdigit():
        raise ValueError(f"'{text}' is not ip[:port] or [ipv6]:port (resolvers are given by address)")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"'{text}': port must be 1-65535")
    return ip.compressed, port


def resolver_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _name(text: str) -> str:
    return text.strip().lower().rstrip(".") or "."


def normalize_value(record_type: str, text: str) -> str:
    """An expected value in the form answers are shown in, so "10 MX.Example.com." equals "10 mx.example.com"."""
    text = text.strip()
    parts = text.split()
    try:
        if record_type in ("A", "AAAA"):
            return ipaddress.ip_address(text).compressed
        if record_type in _NAME_TYPES:
            return _name(text)
        if record_type == "MX" and len(parts) == 2:
            return f"{int(parts[0])} {_name(parts[1])}"
        if record_type == "SRV" and len(parts) == 4:
            return f"{int(parts[0])} {int(parts[1])} {int(parts[2])} {_name(parts[3])}"
        if record_type == "CAA" and len(parts) >= 3:
            return f"{int(parts[0])} {parts[1].lower()} {' '.join(parts[2:]).strip(chr(34))}"
        if record_type == "SOA" and len(parts) == 7:
            return " ".join([_name(parts[0]), _name(parts[1]), *(str(int(p)) for p in parts[2:])])
    except ValueError:
        return text
    if record_type == "TXT" and len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def answer_value(record_type: str, rdata) -> str:
    """One answer record as text, in normalize_value's form."""
    if record_type in ("A", "AAAA"):
        return ipaddress.ip_address(rdata.address).compressed
    if record_type in _NAME_TYPES:
        return _name(rdata.target.to_text())
    if record_type == "MX":
        return f"{rdata.preference} {_name(rdata.exchange.to_text())}"
    if record_type == "SRV":
        return f"{rdata.priority} {rdata.weight} {rdata.port} {_name(rdata.target.to_text())}"
    if record_type == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if record_type == "CAA":
        return f"{rdata.flags} {rdata.tag.decode().lower()} {rdata.value.decode('utf-8', 'replace')}"
    if record_type == "SOA":
        return (
            f"{_name(rdata.mname.to_text())} {_name(rdata.rname.to_text())} {rdata.serial} {rdata.refresh} "
            f"{rdata.retry} {rdata.expire} {rdata.minimum}"
        )
    return rdata.to_text()


class DnsConfig(CheckConfig):
    target: str  # the name to resolve; for PTR an IP address is accepted and turned into its reverse name
    record_type: RecordType = "A"
    resolvers: list[str] = Field(default_factory=list, max_length=5)  # empty: the system resolver
    transport: Literal["udp", "tcp"] = "udp"
    expected_values: list[str] = Field(default_factory=list, max_length=50)
    match: MatchMode = "all"
    expected_rcode: Rcode = "NOERROR"
    timeout_seconds: int = Field(default=5, ge=1, le=MAX_CHECK_SECONDS)
    alert_on_change: bool = False

    @field_validator("record_type", "expected_rcode", "transport", "match", mode="before")
    @classmethod
    def _case(cls, value: object, info) -> object:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name in ("transport", "match") else value.upper()

    @field_validator("resolvers")
    @classmethod
    def _resolvers(cls, resolvers: list[str]) -> list[str]:
        vetted = []
        for text in resolvers:
            address, port = parse_resolver(text)
            # a resolver is a target like any other: the check sends it packets
            reason = None if internal_targets_allowed() else blocked_reason(ipaddress.ip_address(address))
            if reason:
                raise ValueError(
                    f"resolver '{text}' is {reason}; set ALLOW_INTERNAL_TARGETS=true to allow it"
                )
            vetted.append(resolver_text(address, port))
        return vetted

    @model_validator(mode="after")
    def _target_and_values(self) -> DnsConfig:
        ip = parse_ip(self.target)
        if ip is not None and self.record_type != "PTR":
            raise ValueError(f"target: an IP address is resolved with recordType PTR, not {self.record_type}")
        if ip is None:
            check_hostname_syntax(self.target)
        if self.match == "regex":
            for pattern in self.expected_values:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(
                        f"expectedValues: '{pattern}' is not a regular expression: {error}"
                    ) from None
        else:
            self.expected_values = [normalize_value(self.record_type, v) for v in self.expected_values]
        return self

    def query_name(self) -> str:
        import dns.reversename

        ip = parse_ip(self.target)
        return dns.reversename.from_address(ip.compressed).to_text() if ip is not None else self.target


def judge_dns(config: DnsConfig, rcode: str, values: list[str]) -> tuple[str, str]:
    """Pure: (status, message) from the answer's rcode and its values of the asked type, compared as sets."""
    found = set(values)
    kind = config.record_type
    if rcode != config.expected_rcode:
        return "down", f"rcode {rcode}, expected {config.expected_rcode}"
    if config.expected_rcode != "NOERROR":
        return "up", f"rcode {rcode}, as expected"
    if not found:
        return "down", f"no {kind} records for {config.target}"
    shown = ", ".join(sorted(found))
    expected = set(config.expected_values)
    if not expected:
        return "up", f"{len(found)} {kind} record(s): {shown}"
    if config.match == "all" and not expected <= found:
        return "down", f"missing {kind} value(s): {', '.join(sorted(expected - found))} (got {shown})"
    if config.match == "any" and not expected & found:
        return "down", f"none of the expected {kind} values (got {shown})"
    if config.match == "none" and expected & found:
        return "down", f"unwanted {kind} value(s) present: {', '.join(sorted(expected & found))}"
    if config.match == "regex":
        patterns = [re.compile(p) for p in config.expected_values]
        stray = sorted(v for v in found if not any(p.search(v) for p in patterns))
        if stray:
            return "down", f"{kind} value(s) matching no pattern: {', '.join(stray)}"
    return "up", f"{len(found)} {kind} record(s) as expected: {shown}"


def _resolvers_to_ask(config: DnsConfig) -> list[tuple[str, int]]:
    if config.resolvers:
        return [parse_resolver(text) for text in config.resolvers]
    import dns.resolver

    try:  # the operator's own resolver (resolv.conf), not a user's target: no SSRF rule applies
        return [(address, DNS_PORT) for address in dns.resolver.Resolver().nameservers]
    except dns.resolver.NoResolverConfiguration:
        return []


async def _ask(
    query, address: str, port: int, transport: str, seconds: float
) -> tuple[dns.message.Message, str]:
    import dns.asyncquery
    import dns.flags

    from shared.checks.egress import source_address_for

    source = source_address_for(address)
    if transport == "udp":
        response = await dns.asyncquery.udp(query, address, timeout=seconds, port=port, source=source)
        if not response.flags & dns.flags.TC:
            return response, "udp"
    response = await dns.asyncquery.tcp(query, address, timeout=seconds, port=port, source=source)
    return response, "tcp"


def _facts(config: DnsConfig, response) -> tuple[str, list[dict], dict]:
    import dns.flags
    import dns.rcode
    import dns.rdatatype

    wanted = dns.rdatatype.from_text(config.record_type)
    answers, chain = [], []
    for rrset in response.answer:
        for rdata in rrset:
            if rrset.rdtype == wanted:
                answers.append({"value": answer_value(config.record_type, rdata), "ttl": rrset.ttl})
            elif rrset.rdtype == dns.rdatatype.CNAME:
                chain.append(answer_value("CNAME", rdata))
    extra: dict = {"authoritative": bool(response.flags & dns.flags.AA)}
    if chain:
        extra["cnameChain"] = chain
    soa = [
        r
        for rrset in (*response.answer, *response.authority)
        if rrset.rdtype == dns.rdatatype.SOA
        for r in rrset
    ]
    if soa:
        extra["soaSerial"] = soa[0].serial
    return dns.rcode.to_text(response.rcode()), answers, extra


async def check_dns(job: CheckJob) -> CheckOutcome:
    import dns.exception
    import dns.message
    import dns.rdatatype

    config = DnsConfig.model_validate({**job.config, "target": job.target})
    query = dns.message.make_query(config.query_name(), dns.rdatatype.from_text(config.record_type))
    resolvers = _resolvers_to_ask(config)
    if not resolvers:
        return CheckOutcome(status="error", message="no resolver: none configured and no system resolver")
    started = time.perf_counter()
    deadline = started + config.timeout_seconds
    failures = []
    for index, (address, port) in enumerate(resolvers):  # in order: the next one when one does not answer
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        share = remaining / (len(resolvers) - index)  # a silent resolver leaves time for the next ones
        try:
            response, transport = await _ask(query, address, port, config.transport, share)
        except (dns.exception.DNSException, OSError) as error:
            failures.append(f"{resolver_text(address, port)}: {type(error).__name__} {error}".strip())
            continue
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        rcode, answers, extra = _facts(config, response)
        status, message = judge_dns(config, rcode, [answer["value"] for answer in answers])
        details = {
            "recordType": config.record_type,
            "resolver": resolver_text(address, port),
            "transport": transport,
            "rcode": rcode,
            "answers": sorted(answers, key=lambda answer: answer["value"]),
            **extra,
        }
        return CheckOutcome(
            status=status,
            message=message,
            response_time_ms=round(elapsed_ms),
            dns_ms=elapsed_ms,
            details=details,
        )
    timed_out = time.perf_counter() >= deadline
    message = "; ".join(failures) or "no resolver answered"
    return CheckOutcome(
        status="timeout" if timed_out else "down",
        message=f"no answer within {config.timeout_seconds}s: {message}" if timed_out else message,
        details={"recordType": config.record_type, "resolvers": [resolver_text(*r) for r in resolvers]},
    )
