"""Stage 5, scope: a resource that lists scopes needs a token holding at least ONE of them
(WSO2 semantics). A resource without scopes needs none; API keys skip this stage."""

from __future__ import annotations

from authz_server.context import Identity, Route
from authz_server.denials import InsufficientScope


def check_scope(route: Route, identity: Identity) -> None:
    required = route.resource.scopes
    if not required or not identity.is_token:
        return
    if identity.scopes.isdisjoint(required):
        raise InsufficientScope(scopes=required)
