"""The verified-token cache: a JWT whose signature was verified once is not verified again
until it expires (the signature is ~90% of a JWT decision's own cost).

Only the cryptography and the token's own immutable content are remembered, keyed by the
token's SHA-256 (no token is held in the clear). Everything that can change while the
token lives is checked on every request all the same: the key manager (still the same
configuration, enabled, allowed for this API), its key still published, exp, the
revocation list, and after this stage the client, subscription and scope.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from authz_server.index.key_managers import KeyManagerPolicy
from authz_server.key_managers.cache import TtlCache
from authz_server.key_managers.jwks import VerificationKey
from authz_server.metrics.recorder import recorder


@dataclass(frozen=True)
class VerifiedJwt:
    key_manager: KeyManagerPolicy   # the exact configuration it was verified under
    key: VerificationKey            # the key that verified the signature
    kid: str | None
    alg: str
    claims: Mapping[str, Any]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "surrogateescape")).digest()


class VerifiedTokenCache:
    def __init__(self, max_entries: int) -> None:
        self._cache: TtlCache[VerifiedJwt] = TtlCache(max_entries)

    def get(self, digest: bytes, now: float) -> VerifiedJwt | None:
        found = self._cache.get(digest, now)
        recorder.cache_lookup("verified_token", found is not None)
        return found

    def put(self, digest: bytes, verified: VerifiedJwt, now: float) -> None:
        """Kept until exp (plus the key manager's leeway): past it the full path says token_expired."""
        exp = verified.claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            self._cache.put(digest, verified, float(exp) + verified.key_manager.leeway_seconds, now)

    def __len__(self) -> int:
        return len(self._cache)
