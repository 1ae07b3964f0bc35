"""Which webhook destinations Lodestar may connect to (SSRF guard). Pure: no I/O.

Two checks, both returning a ``GuardVerdict`` (allowed, or a ``Refusal`` with
a detail):

- ``check_url(url, policy)`` before resolving: the URL must parse, have a
  host, and use ``https`` (``http`` only when ``policy.allow_http``); no
  credentials in the URL.
- ``check_addresses(url, addresses, policy)`` after resolving: EVERY address
  the host resolved to must be acceptable, otherwise the destination is refused
  as a whole (a name that resolves to one public and one private address is
  refused). An address is refused when it is unspecified, loopback,
  link-local (incl. 169.254.169.254 cloud metadata), multicast, private
  (RFC 1918, ULA fc00::/7 …), reserved, or otherwise not globally routable
  (e.g. 100.64.0.0/10). An IPv6 address that embeds an IPv4 one
  (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``)
  is judged by the embedded IPv4 address.

The allow list (``GuardPolicy.from_entries``) takes host names (exact, case
insensitive: the host's DNS is then trusted) and IP addresses or CIDR blocks
(an address inside one is accepted whatever its kind). An empty allow list
accepts public addresses only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refusal(StrEnum):
    INVALID_URL = "INVALID_URL"
    NOT_HTTPS = "NOT_HTTPS"
    NO_ADDRESSES = "NO_ADDRESSES"
    UNSPECIFIED = "UNSPECIFIED"
    LOOPBACK = "LOOPBACK"
    LINK_LOCAL = "LINK_LOCAL"
    MULTICAST = "MULTICAST"
    PRIVATE = "PRIVATE"
    RESERVED = "RESERVED"
    NOT_GLOBAL = "NOT_GLOBAL"


@dataclass(frozen=True)
class GuardPolicy:
    allow_http: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str], allow_http: bool = False) -> GuardPolicy:
        """A policy from allow-list entries: IPs/CIDRs become networks, the rest host names.
        Raises ValueError for an entry that is neither."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if "/" in name or ":" in name or not name:
                raise ValueError(f"allow-list entry {raw!r} is neither a host name nor a CIDR")
            hosts.add(name)
        return cls(allow_http, frozenset(hosts), tuple(networks))

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net
                   for net in self.allowed_networks)


@dataclass(frozen=True)
class Destination:
    """A parsed webhook URL: scheme, host (lowercase, no brackets), port."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class GuardVerdict:
    allowed: bool
    reason: Refusal | None = None
    detail: str = ""
    destination: Destination | None = None
    addresses: tuple[str, ...] = field(default=())
    """The checked addresses to connect to (only when allowed after resolution)."""


def _refuse(reason: Refusal, detail: str, destination: Destination | None = None) -> GuardVerdict:
    return GuardVerdict(False, reason, detail, destination)


_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?:[/?#].*)?",
                  re.S)
_BRACKETED = re.compile(r"\[(?P<host>[0-9A-Fa-f:.]+)\](?::(?P<port>[0-9]*))?")
_HOST_ASCII = re.compile(r"[A-Za-z0-9._-]+")


def _host_ok(host: str) -> bool:
    ascii_part = "".join(c for c in host if ord(c) < 128)
    return bool(host) and (not ascii_part or _HOST_ASCII.fullmatch(ascii_part) is not None)


def _split(url: str) -> tuple[str, str, str] | str:
    """(scheme, host, port text) of an absolute URL, or why it is not one."""
    match = _URL.fullmatch(url.strip())
    if match is None:
        return f"{url!r} is not an absolute URL with a host"
    authority = match["authority"]
    if "@" in authority:
        return "credentials in a webhook URL are not accepted"
    bracketed = _BRACKETED.fullmatch(authority)
    if bracketed is not None:
        host, port = bracketed["host"], bracketed["port"] or ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"[{host}] is not an IPv6 address"
    elif authority.startswith("["):
        return f"{authority!r} is not a bracketed IPv6 address"
    else:
        host, _, port = authority.partition(":")
        if ":" in port:
            return f"{authority!r} has more than one port separator"
        if not _host_ok(host):
            return f"{url!r} has no valid host"
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        return f"port {port!r} is not a TCP port"
    return match["scheme"].lower(), host.lower().rstrip("."), port


def check_url(url: str, policy: GuardPolicy) -> GuardVerdict:
    """The checks that need no resolution: scheme, host, port, no userinfo."""
    parts = _split(url)
    if isinstance(parts, str):
        return _refuse(Refusal.INVALID_URL, parts)
    scheme, host, port_text = parts
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        return _refuse(Refusal.NOT_HTTPS, f"scheme {scheme!r}: webhooks must use https")
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    return GuardVerdict(True, detail="url accepted", destination=Destination(scheme, host, port))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(address: IPAddress) -> Refusal | None:
    """Why ``address`` is not a public destination; None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return classify(inner)
    checks = (
        (address.is_unspecified, Refusal.UNSPECIFIED),
        (address.is_loopback, Refusal.LOOPBACK),
        (address.is_link_local, Refusal.LINK_LOCAL),
        (address.is_multicast, Refusal.MULTICAST),
        (address.is_private, Refusal.PRIVATE),
        (address.is_reserved, Refusal.RESERVED),
        (not address.is_global, Refusal.NOT_GLOBAL),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def parse_address(text: str) -> IPAddress:
    """An address as ``getaddrinfo`` gives it (an IPv6 scope id is dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def check_addresses(url: str, addresses: Iterable[str], policy: GuardPolicy) -> GuardVerdict:
    """``check_url`` plus every resolved address; allowed only if all of them are."""
    verdict = check_url(url, policy)
    if not verdict.allowed:
        return verdict
    destination = verdict.destination
    assert destination is not None
    checked = list(dict.fromkeys(addresses))
    if not checked:
        return _refuse(Refusal.NO_ADDRESSES, f"{destination.host} resolved to no address",
                       destination)
    host_allowed = destination.host in policy.allowed_hosts
    for text in checked:
        try:
            address = parse_address(text)
        except ValueError:
            return _refuse(Refusal.INVALID_URL, f"{text!r} is not an IP address", destination)
        if host_allowed or policy.allows_address(address):
            continue
        reason = classify(address)
        if reason is not None:
            return _refuse(reason, f"{destination.host} resolves to {address} "
                           f"({reason.value.lower().replace('_', '-')})", destination)
    return GuardVerdict(True, detail="destination accepted", destination=destination,
                        addresses=tuple(checked))
