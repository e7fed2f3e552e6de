"""The client's address: ONE rule for everything that records or limits by IP (API, UI, audit).

The socket peer is the client unless the peer is a trusted proxy (CNOP_TRUSTED_PROXIES, CIDRs):
then the right-most address of X-Forwarded-For that is not itself a trusted proxy is the client.
Anyone can send X-Forwarded-For, so it is ignored from untrusted peers (a lesson from the reference
system, whose rate limit trusted it from anyone).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=32)
def parse_networks(spec: str) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 127.0.0.1"` as networks; raises ValueError naming a bad entry."""
    networks = []
    for part in spec.replace(";", ",").split(","):
        text = part.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


# Memoised: every API request and websocket asks, and the same clients come back request after request
# (parsing the addresses was most of the cost). Bounded: X-Forwarded-For is whatever a client sends.
@lru_cache(maxsize=4096)
def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The client's IP as text (None when unknown)."""
    peer_address = _address(peer) if peer else None
    if peer_address is None:
        return peer or None
    if not trusted or not forwarded_for or not _trusted(peer_address, trusted):
        return str(peer_address)
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            return str(peer_address)  # a garbled header: fall back to the proxy itself
        if not _trusted(address, trusted):
            return str(address)
    return str(peer_address)  # every hop is a trusted proxy
