"""Stage 7, the response stage: the signed backend JWT, when the API asks for one.

Secured resources always get it (when enabled); open resources only when the API opts
in (`include_on_open_resources`). The adapter sets it with OVERWRITE, so a client-sent
header of the same name never reaches the backend.
"""

from __future__ import annotations

from dataclasses import replace
from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.context import Allow
from authz_server.denials import BackendJwtUnavailable
from authz_server.index.policy_index import PolicyIndex


def attach_backend_jwt(allow: Allow, index: PolicyIndex, now: float, issuer: BackendJwtIssuer | None) -> Allow:
    config = allow.route.api.backend_jwt
    if config is None:
        return allow
    if allow.identity is None and not config.include_on_open_resources:
        return allow
    if issuer is None:
        # Fail closed: the backend relies on the token.
        raise BackendJwtUnavailable("Backend JWT signing is not configured on this replica.")
    token = issuer.issue(allow.route.api, allow.environment.value, allow.identity, index, now, allow.over_quota)
    return replace(allow, backend_jwt=token)
