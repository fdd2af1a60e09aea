"""The resident key manager of one admin_api process: signing keys and the authlib
server over the Store, with the issuer taken from the deployment's public URL."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from admin_api.transports.oauth2.server import ResidentAuthorizationServer
from admin_api.oauth.signing_keys import SigningKeys
from admin_api.store.unit_of_work import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResidentKeyManager:
    store: Store
    keys: SigningKeys
    server: ResidentAuthorizationServer

    @property
    def issuer(self) -> str:
        return self.server.issuer

    @classmethod
    def create(cls, store: Store) -> "ResidentKeyManager":
        """Built from the Store's ServiceConfig (public URL, KEK); makes the first signing
        key when there is none yet."""
        issuer = store.config.public_url.rstrip("/")
        keys = SigningKeys(store, store.config.require_kek())
        active = keys.ensure_active()
        log.info("resident key manager: issuer %s, signing key %s (%s)", issuer, active.kid, active.algorithm)
        return cls(store=store, keys=keys, server=ResidentAuthorizationServer(store, keys, issuer))
