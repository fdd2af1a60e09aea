"""The life of an application key's client at an external key manager, by RFC 7591/7592:
registered with the key, updated when the key's settings change, deleted with the key
(or its application). The provider is called outside any write transaction (it may be
slow); the key's row remembers the client's configuration endpoint and its registration
access token, sealed with the KEK and bound to the row."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.config import ServiceConfig
from admin_api.db import models
from admin_api.services import dcr

log = logging.getLogger(__name__)

TOKEN_COLUMN = "registration_access_token"


@dataclass(frozen=True)
class Registration:
    """Where and how one registered client is updated or deleted."""

    application_key_id: str
    client_id: str
    uri: str
    access_token: str = field(repr=False)


def client_name(application: models.Application, environment: str) -> str:
    return f"{application.name} ({environment.lower()}, {application.organization_id})"


def _aad(application_key_id: str) -> bytes:
    return f"application_key:{application_key_id}:{TOKEN_COLUMN}".encode()


def remember(row: models.ApplicationKey, client: dcr.RegisteredClient, endpoint: str, config: ServiceConfig) -> None:
    """Keep what RFC 7592 needs of a registration (or of an update that rotated it)."""
    uri = client.registration_client_uri or row.registration_client_uri
    if client.registration_client_uri and not dcr.same_origin(client.registration_client_uri, endpoint):
        # The token would go to another server: not kept, the client stays as registered.
        log.error("application key %s: registration_client_uri %r is not on the origin of %s; updates and "
                  "deletion will not reach the provider", row.id, client.registration_client_uri[:300], endpoint)
        row.registration_client_uri, row.registration_access_token_encrypted = "", None
        return
    row.registration_client_uri = uri
    if client.registration_access_token:
        row.registration_access_token_encrypted = config.require_kek().encrypt(
            client.registration_access_token.encode(), _aad(row.id))


def registration_of(row: models.ApplicationKey, config: ServiceConfig) -> Registration | None:
    """The key's RFC 7592 registration; None for a key registered before this was kept,
    mapped, or at a provider without a configuration endpoint."""
    if not row.registration_client_uri or row.registration_access_token_encrypted is None:
        return None
    token = config.require_kek().decrypt(row.registration_access_token_encrypted, _aad(row.id)).decode()
    return Registration(row.id, row.consumer_key, row.registration_client_uri, token)


def registrations_of_application(session: Session, application_id: str, config: ServiceConfig) -> list[Registration]:
    rows = session.scalars(select(models.ApplicationKey)
                           .where(models.ApplicationKey.application_id == application_id)).all()
    return [registration for row in rows if (registration := registration_of(row, config)) is not None]


def deregister(registration: Registration, *, timeout: float) -> None:
    """Delete the client at its provider; a client the provider no longer knows is gone already."""
    try:
        dcr.delete(registration.uri, registration.access_token, timeout=timeout)
    except dcr.ClientGone as gone:
        log.warning("application key %s: the provider no longer knows client %s (%s); deleted here only",
                    registration.application_key_id, registration.client_id, str(gone).lstrip(", ") or "no detail")
        return
    log.info("application key %s: client %s deleted at its provider", registration.application_key_id,
             registration.client_id)
