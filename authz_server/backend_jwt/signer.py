"""The one-method signer contract and its PyJWT implementation (ES256, RS256, EdDSA)."""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import jwt

from authz_server.index.backend_keys import BackendKeyPolicy

TOKEN_TYPE = "JWT"


class BackendJwtSigner(Protocol):
    def sign(self, claims: Mapping[str, Any], key: BackendKeyPolicy) -> str:
        """A compact JWS of `claims` by `key`, with `kid` and `alg` in the header."""
        ...


class PyJwtSigner:
    def sign(self, claims: Mapping[str, Any], key: BackendKeyPolicy) -> str:
        return jwt.encode(dict(claims), key.private_key, algorithm=key.algorithm,
                          headers={"kid": key.kid, "typ": TOKEN_TYPE})
