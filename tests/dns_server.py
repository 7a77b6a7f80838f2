"""A real authoritative DNS server for tests, on a free loopback port over UDP and TCP (dnspython builds and parses
the messages): records are set per (name, type) and may change between queries; every query is counted."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections import Counter
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

ZONE_SOA = "ns1.test. hostmaster.test. {serial} 3600 600 86400 60"


@dataclass
class DnsZone:
    """(name, type) → (ttl, [rdata text]); names absent from every key answer NXDOMAIN."""

    records: dict[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)
    serial: int = 2026120301
    truncate_udp: bool = False  # answer UDP with TC set and no records, as for an answer too large for UDP
    queries: Counter = field(default_factory=Counter)  # by transport
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, name: str, record_type: str, values: list[str], ttl: int = 300) -> None:
        with self.lock:
            self.records[(name.lower().rstrip("."), record_type)] = (ttl, values)

    def answer(self, wire: bytes, transport: str) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        record_type = dns.rdatatype.to_text(question.rdtype)
        with self.lock:
            self.queries[transport] += 1
            known = {key[0] for key in self.records}
            found = self.records.get((name, record_type))
            cname = self.records.get((name, "CNAME"))
        if transport == "udp" and self.truncate_udp:
            response.flags |= dns.flags.TC
            return response.to_wire()
        if name not in known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        if cname and record_type != "CNAME":
            response.answer.append(dns.rrset.from_text_list(question.name, cname[0], "IN", "CNAME", cname[1]))
            target = cname[1][0].lower().rstrip(".")
            found = self.records.get((target, record_type))
            question_name = dns.name.from_text(target)
        else:
            question_name = question.name
        if found:
            response.answer.append(
                dns.rrset.from_text_list(question_name, found[0], "IN", record_type, found[1])
            )
        else:
            soa = ZONE_SOA.format(serial=self.serial)
            response.authority.append(
                dns.rrset.from_text_list(dns.name.from_text("test."), 60, "IN", "SOA", [soa])
            )
        return response.to_wire()


class DnsServer:
    """Serves a DnsZone on 127.0.0.1 (or ::1): UDP and TCP on the same free port."""

    def __init__(self, zone: DnsZone | None = None, host: str = "127.0.0.1"):
        self.zone = zone or DnsZone()
        self.host = host
        self._servers: list[socketserver.BaseServer] = []

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> DnsServer:
        zone = self.zone
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(zone.answer(data, "udp"), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                length = self.request.recv(2)
                if len(length) < 2:
                    return
                wanted, data = int.from_bytes(length, "big"), b""
                while len(data) < wanted:
                    chunk = self.request.recv(wanted - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = zone.answer(data, "tcp")
                self.request.sendall(len(reply).to_bytes(2, "big") + reply)

        class UdpServer(socketserver.ThreadingUDPServer):
            address_family = family
            daemon_threads = True

        class TcpServer(socketserver.ThreadingTCPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        # one port for both: bind UDP to a free port, then TCP to the same one (retried if it is taken)
        for _ in range(20):
            udp = UdpServer((self.host, 0), Udp)
            self.port = udp.server_address[1]
            try:
                tcp = TcpServer((self.host, self.port), Tcp)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        self._servers = [udp, tcp]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


class SilentUdpPort:
    """A UDP socket that reads and never answers: a resolver that is down but whose host still takes packets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
