"""The backend JWT for one allowed call: from the cache, or built, signed and cached."""

from __future__ import annotations

from authz_server.backend_jwt.cache import BackendJwtCache
from authz_server.backend_jwt.claims import ANONYMOUS, backend_claims
from authz_server.backend_jwt.signer import BackendJwtSigner, PyJwtSigner
from authz_server.context import Identity
from authz_server.denials import BackendJwtUnavailable
from authz_server.index.apis import ApiPolicy
from authz_server.index.policy_index import PolicyIndex

DEFAULT_ISSUER = "portcullis"


class BackendJwtIssuer:
    def __init__(self, *, issuer: str = DEFAULT_ISSUER, signer: BackendJwtSigner | None = None,
                 cache: BackendJwtCache | None = None) -> None:
        self.issuer = issuer
        self.signer: BackendJwtSigner = signer or PyJwtSigner()
        self.cache = cache or BackendJwtCache()

    def issue(self, api: ApiPolicy, environment: str, identity: Identity | None, index: PolicyIndex,
              now: float, over_quota: tuple[str, ...] = ()) -> str:
        """`over_quota`: the limits the call is over but admitted under (claim `over_quota`)."""
        config = api.backend_jwt
        if config is None:
            raise ValueError(f"API {api.id} has no backend JWT")
        key = index.backend_keys.signing_key(config.algorithm)
        if key is None:
            raise BackendJwtUnavailable(f"No {config.algorithm} key to sign the backend JWT has been received yet.")
        application_id = identity.application_id if identity is not None else None
        application = index.applications.get(application_id) if application_id else None
        credential = identity.credential_id if identity is not None else ANONYMOUS
        # No credential id, no caching: two callers must never share a token.
        cache_key = (credential, api.id, config, environment, key.kid, application, over_quota) if credential else None
        if cache_key is not None:
            cached = self.cache.get(cache_key, now)
            if cached is not None:
                return cached
        claims = backend_claims(issuer=self.issuer, now=int(now), config=config, api=api, environment=environment,
                                identity=identity, application=application, over_quota=over_quota)
        token = self.signer.sign(claims, key)
        if cache_key is not None:
            self.cache.put(cache_key, token, claims["exp"], config.validity_seconds)
        return token
