"""Stage 3b: the API key's IP restriction against the client IP."""

from __future__ import annotations

from authz_server.context import Identity, RequestContext
from authz_server.denials import IpNotAllowed


def check_ip_restriction(request: RequestContext, identity: Identity) -> None:
    key = identity.api_key
    if key is None or key.allowed_ips is None:
        return
    if not key.allowed_ips.allows(request.client_ip):
        raise IpNotAllowed()
