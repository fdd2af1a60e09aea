"""Consumer secrets of application keys at the resident key manager: shown once, stored
as SHA-256 (256 random bits, like API keys). With PORTCULLIS_MULTIPLE_CONSUMER_SECRETS off
a key has one secret, replaced by RegenerateConsumerSecret; with it on, secrets are
created and deleted one by one (up to PORTCULLIS_MAX_CONSUMER_SECRETS). Deleting a secret
does not revoke tokens issued with it. `verify_consumer_secret` is what the resident
OAuth2 server calls."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from google.protobuf.empty_pb2 import Empty
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import FailedPrecondition, InvalidArgument, NotFound
from admin_api.services import ownership, validation
from admin_api.store.unit_of_work import Store, new_id
from admin_api.views.application_keys import consumer_secret_pb, oauth_client_settings_pb
from portcullis.admin.v1 import application_keys_pb2, key_managers_pb2
from portcullis_shared.credentials import credential_hash, mask, new_opaque_credential

CONSUMER_SECRET_PREFIX = "pcsec_"
MAX_SECRET_VALIDITY_DAYS = 3650
RESIDENT = key_managers_pb2.KeyManager.Type.Name(key_managers_pb2.KeyManager.RESIDENT)


def verify_consumer_secret(store: Store, application_key_id: str, secret: str, now: datetime) -> bool:
    """Whether `secret` is one of the key's unexpired secrets. Every stored secret is
    compared (constant time each), so the answer's timing says nothing about which."""
    if not secret:
        return False
    candidate = credential_hash(secret)
    with store.read() as session:
        rows = list(session.scalars(select(models.ConsumerSecret)
                                    .where(models.ConsumerSecret.application_key_id == application_key_id)))
    matched = False
    for row in rows:
        same = hmac.compare_digest(candidate, row.secret_hash)
        matched |= same and (row.expires_at is None or row.expires_at > now)
    return matched


def create_consumer_secret(store: Store, request: application_keys_pb2.CreateConsumerSecretRequest,
                           caller: Caller) -> application_keys_pb2.ConsumerSecretWithValue:
    config = store.config
    if not config.multiple_consumer_secrets:
        raise FailedPrecondition("multiple consumer secrets are disabled in this deployment "
                                 "(PORTCULLIS_MULTIPLE_CONSUMER_SECRETS=false): use RegenerateConsumerSecret to "
                                 "replace the key's secret")
    description = validation.description(request.description)
    validity = check_validity_days(request.validity_days, "validity_days")
    with store.write() as writer:
        row = _secret_holder(writer.session, request.application_key_id, caller)
        count = len(secrets_of(writer.session, row.id))
        if config.max_consumer_secrets and count >= config.max_consumer_secrets:
            raise FailedPrecondition(f"application key {row.id!r} already has {count} consumer secret(s), the "
                                     f"maximum of this deployment (PORTCULLIS_MAX_CONSUMER_SECRETS="
                                     f"{config.max_consumer_secrets}): delete one first", field="application_key_id")
        return _new_secret(writer.session, row, description, validity)


def list_consumer_secrets(store: Store, request: application_keys_pb2.ListConsumerSecretsRequest,
                          caller: Caller) -> application_keys_pb2.ListConsumerSecretsResponse:
    with store.read() as session:
        row = ownership.application_key(session, request.application_key_id, caller, field="application_key_id")
        return application_keys_pb2.ListConsumerSecretsResponse(
            secrets=[consumer_secret_pb(secret) for secret in secrets_of(session, row.id)])


def delete_consumer_secret(store: Store, request: application_keys_pb2.DeleteConsumerSecretRequest,
                           caller: Caller) -> Empty:
    if not store.config.multiple_consumer_secrets:
        raise FailedPrecondition("multiple consumer secrets are disabled in this deployment: the key's single "
                                 "secret is replaced with RegenerateConsumerSecret, not deleted")
    with store.write() as writer:
        row = ownership.application_key(writer.session, request.application_key_id, caller, field="application_key_id")
        secret = next((s for s in secrets_of(writer.session, row.id) if s.id == request.id), None)
        if secret is None:
            raise NotFound(f"consumer secret {request.id!r} not found", field="id")
        # Tokens already issued with this secret stay valid until they expire.
        writer.session.delete(secret)
    return Empty()


def regenerate_consumer_secret(store: Store, request: application_keys_pb2.RegenerateConsumerSecretRequest,
                               caller: Caller) -> application_keys_pb2.ConsumerSecretWithValue:
    if store.config.multiple_consumer_secrets:
        raise FailedPrecondition("multiple consumer secrets are enabled in this deployment: create a new secret "
                                 "(CreateConsumerSecret) and delete the old one (DeleteConsumerSecret) instead")
    with store.write() as writer:
        row = _secret_holder(writer.session, request.application_key_id, caller)
        for old in secrets_of(writer.session, row.id):
            writer.session.delete(old)
        writer.session.flush()
        return _new_secret(writer.session, row, "", 0)


def _new_secret(session: Session, row: models.ApplicationKey, description: str,
                validity_days: int) -> application_keys_pb2.ConsumerSecretWithValue:
    now = utcnow()
    value = new_opaque_credential(CONSUMER_SECRET_PREFIX)
    expires_at = now + timedelta(days=validity_days) if validity_days else None
    secret = insert_secret(session, row, value, description, expires_at, now)
    return application_keys_pb2.ConsumerSecretWithValue(secret=consumer_secret_pb(secret), value=value)


def insert_secret(session: Session, row: models.ApplicationKey, value: str, description: str,
                   expires_at: datetime | None, now: datetime) -> models.ConsumerSecret:
    secret = models.ConsumerSecret(id=new_id(), organization_id=row.organization_id, application_key_id=row.id,
                                   secret_hash=credential_hash(value), masked_value=mask(value),
                                   description=description, expires_at=expires_at, created_at=now)
    session.add(secret)
    session.flush()
    return secret


def _secret_holder(session: Session, application_key_id: str, caller: Caller) -> models.ApplicationKey:
    """A key whose secrets Portcullis issues: generated at the resident key manager, not public."""
    row = ownership.application_key(session, application_key_id, caller, field="application_key_id")
    km = session.get_one(models.KeyManager, row.key_manager_id)
    if km.type != RESIDENT:
        raise FailedPrecondition(f"the secrets of application key {row.id!r} are managed by key manager "
                                 f"{km.name!r}, not by Portcullis", field="application_key_id")
    if oauth_client_settings_pb(row.settings).public_client:
        raise FailedPrecondition(f"application key {row.id!r} is a public client: it has no consumer secret",
                                 field="application_key_id")
    return row


def secrets_of(session: Session, application_key_id: str) -> list[models.ConsumerSecret]:
    return list(session.scalars(select(models.ConsumerSecret)
                                .where(models.ConsumerSecret.application_key_id == application_key_id)
                                .order_by(models.ConsumerSecret.created_at, models.ConsumerSecret.id)))


def check_validity_days(value: int, field: str) -> int:
    if not 0 <= value <= MAX_SECRET_VALIDITY_DAYS:
        raise InvalidArgument(f"{field} {value} must be between 0 (never expires) and {MAX_SECRET_VALIDITY_DAYS}",
                              field=field)
    return value
