"""Requests the server makes to addresses others give it (a campaign's webhook, the image a
WeCom answer points at): which host names and addresses are inside the network and may not be
reached. A caller checks every address its host resolves to, then connects to an address it
checked (see campaigns.channels.webhook_url, crm.wecom.contact_ways)."""

import ipaddress
import socket

SCHEMES = frozenset({"http", "https"})
# Names that are internal whatever they resolve to (cloud metadata services, mDNS, RFC 6761
# and RFC 8375 special-use names).
BLOCKED_NAMES = frozenset({"localhost", "metadata.google.internal", "metadata", "instance-data"})
BLOCKED_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".localdomain",
    ".home.arpa",
    ".lan",
    ".intranet",
    ".corp",
)
# Ranges `ipaddress` does not flag on every Python this runs on: CGNAT (shared address
# space), "this network", and NAT64 prefixes whose embedded IPv4 address is checked apart.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # an IPv6 zone id is not part of it
        if address not in addresses:
            addresses.append(address)
    return addresses


def address_is_public(address: IPAddress) -> bool:
    """Whether a post may go to `address`: not loopback, private, link-local, multicast,
    reserved, unspecified, shared (CGNAT) or otherwise not globally routable, and not an
    IPv6 form of such an IPv4 address (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address.teredo is not None:
            embedded = address.teredo[1]
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not address_is_public(embedded):
            return False
        if address.is_site_local:
            return False
    if any(
        address in network for network in _BLOCKED_NETWORKS if network.version == address.version
    ):
        return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def host_is_internal_name(host: str) -> bool:
    """Whether `host` (ASCII, lower case) names an internal host whatever it resolves to."""
    return host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES) or "." not in host
