"""Where alerts may go: each destination host vetted on save, and every send pinned to the addresses it vetted.

Used by the providers (save-time checks) and the send loop (shared/notify/base.py), in the alert function and
the API's provider endpoints.

How a send is pinned. Apprise's plugins and our webhook post send through requests/urllib3 and smtplib, and each
of those resolves the host itself, just before it connects, so a name vetted a moment earlier could answer with
a private address by then (DNS rebinding). Rewriting each URL's host to the vetted IP would need per-plugin
knowledge of 100+ URL formats and would break the Host header, SNI and certificate checks. Instead the one place
all of them resolve through, `socket.getaddrinfo`, is wrapped once per process, and the wrapper consults a
ContextVar that only a send sets (`run_pinned`):
- outside a send it is the plain system call, so nothing else in the process (Postgres, Redis) is affected;
- inside one, a host the send vetted beforehand answers with exactly those addresses; any other host (the fixed
  API host of Telegram, Slack, Discord, ...) is resolved once through shared.ssrf, vetted, and pinned for the
  rest of the send; a refused one is recorded, so the send fails with the reason, and never connects.
A ContextVar rather than a thread-local, because asyncio.to_thread and Apprise's own worker pool copy the context
into the threads they run a send on, and a concurrent send on another thread sees only its own pins. Only the
resolution changes: the libraries still send the real name as Host, SNI and the name the certificate must match.
"""

from __future__ import annotations

import contextvars
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared import ssrf

SAVE_LOOKUP_SECONDS = 5.0
# Plugins whose traffic never passes through socket.getaddrinfo in the send's context: rsyslog hands a name to
# sendto(), which resolves it in C; XMPP runs its client on a thread of its own. Only an IP literal, which needs
# no lookup, can be vetted for them.
UNPINNABLE_PLUGINS = frozenset({"NotifyRSyslog", "NotifyXMPP"})

T = TypeVar("T")


def vet_host_on_save(host: str) -> None:
    """Refuses an internal literal (any spelling) or a name that resolves to an internal address now.

    A name DNS cannot answer for at save is accepted: it may be reachable later, and every send vets it again.
    """
    ssrf.check_literal_host(host)
    if ssrf.internal_targets_allowed() or ssrf.parse_ip(host) is not None:
        return
    try:
        ssrf.resolve_target_blocking(host, None, timeout=SAVE_LOOKUP_SECONDS)
    except ssrf.UnresolvableTarget:
        pass


def plugin_destination(plugin: Any) -> str | None:
    """The host an Apprise plugin sends to when its URL names one ('{host}' in its template), else None:
    for Slack, Discord, Telegram or ntfy://topic, what sits in the host part is a token, not where it goes."""
    if "host" not in getattr(plugin, "template_tokens", {}):
        return None
    return str(getattr(plugin, "host", "") or "").strip("[]") or None


def unpinnable_reason(plugin: Any) -> str | None:
    """Why a send through this plugin cannot be pinned to a vetted address, or None when it can."""
    host = plugin_destination(plugin)
    if type(plugin).__name__ not in UNPINNABLE_PLUGINS or ssrf.internal_targets_allowed():
        return None
    if host is None or ssrf.parse_ip(host) is not None:
        return None
    return f"this service resolves '{host}' outside the vetted resolver; give its IP address instead"


@dataclass
class _Pins:
    addresses: dict[str, list[ssrf.IPAddress]]
    blocked: list[str] = field(default_factory=list)


_pins: contextvars.ContextVar[_Pins | None] = contextvars.ContextVar("notify_pins", default=None)
_system_getaddrinfo = socket.getaddrinfo
_install_lock = threading.Lock()


def _key(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _pinned_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 (socket's own names)
    pins = _pins.get()
    if pins is None or host is None:
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    name = host.decode() if isinstance(host, bytes) else str(host)
    addresses = pins.addresses.get(_key(name))
    if addresses is None:
        try:
            addresses = ssrf.resolve_target_blocking(name)
        except ssrf.BlockedTarget as error:
            pins.blocked.append(str(error))
            raise socket.gaierror(socket.EAI_NONAME, "destination blocked") from None
        except (ssrf.UnresolvableTarget, ValueError) as error:  # ValueError: no valid IP literal either
            raise socket.gaierror(socket.EAI_NONAME, str(error)) from None
        pins.addresses[_key(name)] = addresses  # later connections of this send reuse what was vetted
    infos = []
    for address in addresses:
        try:
            infos += _system_getaddrinfo(
                str(address), port, family, type, proto, flags | socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            continue  # an address of a family the caller did not ask for
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, f"no vetted address of '{name}' fits the requested family")
    return infos


def _install() -> None:
    with _install_lock:
        if socket.getaddrinfo is not _pinned_getaddrinfo:
            socket.getaddrinfo = _pinned_getaddrinfo


def run_pinned(
    vetted: dict[str, list[ssrf.IPAddress]], send: Callable[..., T], *args: Any, **kwargs: Any
) -> tuple[T | None, str | None]:
    """Runs a blocking send with every lookup in it pinned; returns its result and, if a destination was
    refused, why (then the result is whatever the library made of a failed lookup)."""
    _install()
    pins = _Pins({_key(host): addresses for host, addresses in vetted.items()})
    token = _pins.set(pins)
    try:
        result = send(*args, **kwargs)
    finally:
        _pins.reset(token)
    return result, (pins.blocked[0] if pins.blocked else None)
