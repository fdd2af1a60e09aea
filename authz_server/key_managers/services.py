"""What the OAuth2 stage needs besides the index: the JWKS cache and the introspection
client (runtime state, so outside the immutable index), built once from the settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Callable

from authz_server.index.store import PolicyStore
from authz_server.key_managers.http import new_client
from authz_server.key_managers.introspection import IntrospectionClient
from authz_server.key_managers.jwks_cache import JwksCache, JwksRefresher
from authz_server.key_managers.verified import VerifiedTokenCache
from authz_server.settings import TokenSettings


@dataclass
class TokenServices:
    jwks: JwksCache
    introspection: IntrospectionClient
    max_introspection_candidates: int = 3
    refresher: JwksRefresher | None = None
    verified: VerifiedTokenCache | None = None  # None: every JWT's signature is verified

    @classmethod
    def from_settings(cls, settings: TokenSettings, *, sync_token: Callable[[], str | None],
                      verify: ssl.SSLContext | bool = True) -> "TokenServices":
        """`verify`: what key managers' certificates are checked against (new_client)."""
        jwks = JwksCache(
            client=new_client(settings.jwks_timeout_seconds, verify),
            timeout=settings.jwks_timeout_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            max_entries=settings.jwks_cache_size,
        )
        return cls(
            jwks=jwks,
            introspection=IntrospectionClient(
                client=new_client(settings.introspection_timeout_seconds, verify),
                sync_token=sync_token,
                timeout=settings.introspection_timeout_seconds,
                cache_seconds=settings.introspection_cache_seconds,
                negative_cache_seconds=settings.introspection_negative_cache_seconds,
                max_entries=settings.token_cache_size,
            ),
            max_introspection_candidates=settings.max_introspection_candidates,
            refresher=JwksRefresher(jwks, interval=settings.jwks_refresh_seconds),
            verified=VerifiedTokenCache(settings.verified_token_cache_size) if settings.verified_token_cache_size else None,
        )

    def start(self, store: PolicyStore) -> None:
        """Follow the store: prefetch keys of new or changed key managers, refresh periodically."""
        if self.refresher is not None:
            store.add_listener(self.refresher.on_policy_change)
            self.refresher.start()

    def stop(self) -> None:
        if self.refresher is not None:
            self.refresher.stop()
        self.jwks.close()
        self.introspection.close()
