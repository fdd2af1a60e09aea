"""Stage 3c: the API key's referrer restriction against the Referer header."""

from __future__ import annotations

from authz_server.context import Identity, RequestContext
from authz_server.denials import RefererNotAllowed


def check_referrer_restriction(request: RequestContext, identity: Identity) -> None:
    key = identity.api_key
    if key is None or key.allowed_referrers is None:
        return
    values = request.header_values("referer")
    # A repeated Referer is not one URL: refuse rather than pick one.
    referer = values[0] if len(values) == 1 else None
    if not key.allowed_referrers.allows(referer):
        raise RefererNotAllowed()
