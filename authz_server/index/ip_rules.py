"""IP restrictions of an API key: IPv4 and IPv6 addresses and CIDR ranges of either.

IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is compared as IPv4, on both sides, so that a
dual-stack listener's view of an IPv4 client matches an IPv4 rule and nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from authz_server.index.errors import PolicyError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def canonical_address(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_address(text: str) -> IPAddress | None:
    """A client address as Envoy or X-Forwarded-For gives it, or None when unparseable.

    Accepts a bare address, `[v6]`, `[v6]:port` and `v4:port`; a zone id is refused.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not _is_port_suffix(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    if "%" in text:
        return None
    try:
        return canonical_address(ipaddress.ip_address(text))
    except ValueError:
        return None


def _is_port_suffix(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit()


def parse_network(text: str) -> IPNetwork:
    """`10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`, `::ffff:10.0.0.0/104` (→ `10.0.0.0/8`)."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise PolicyError(f"{text!r} is not an IP address or CIDR range") from exc
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


@dataclass(frozen=True)
class IpAllowList:
    networks: tuple[IPNetwork, ...]

    def allows(self, address: IPAddress | None) -> bool:
        if address is None:
            return False
        address = canonical_address(address)
        return any(address in network for network in self.networks if network.version == address.version)
