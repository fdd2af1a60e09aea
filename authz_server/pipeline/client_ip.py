"""The client IP a decision uses: Envoy's peer, or a trusted X-Forwarded-For hop.

With `trusted_hops = N > 0` the N-th address from the right of X-Forwarded-For is the
client (the proxies in front of Envoy each append the address they saw); with fewer
entries than N, the peer. With N = 0 the header is ignored: clients can write it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from authz_server.index.ip_rules import IPAddress, parse_address

# Envoy's peer is one of few addresses (a proxy, a load balancer, a handful of clients):
# parsing it once instead of on every request saves a few µs per decision. The parsed
# value is immutable; the cache is bounded.
_parse_cached = lru_cache(maxsize=4096)(parse_address)


def resolve_client_ip(peer_address: str, forwarded_for: Sequence[str], trusted_hops: int) -> IPAddress | None:
    """None when the chosen address cannot be parsed (an IP restriction then refuses)."""
    if trusted_hops > 0:
        entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
        if len(entries) >= trusted_hops:
            return parse_address(entries[-trusted_hops])
    return _parse_cached(peer_address)
