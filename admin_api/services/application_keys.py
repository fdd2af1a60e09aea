"""Application keys: the OAuth2 clients of applications, one per (application,
environment, key manager), and their consumer secrets.

- Resident key manager: Portcullis makes the consumer key (`pcc_...`) and, unless the
  client is public, a consumer secret (`pcsec_...`).
- External key manager with consumer_app_creation_enabled: the client is registered
  there by RFC 7591 Dynamic Client Registration; its client_id becomes the consumer key
  and only the hash of its client_secret is kept. Without it, keys are mapped
  (MapApplicationKey) from an existing client's consumer key.
- Key generation and mapping obey the key manager's role restriction, by the roles of
  the application's owner; keys made before a restriction keep working.
- A first-party key (`settings.first_party`: its users' tokens may act on the admin API,
  see portcullis_shared.scopes) is a resident client that only admins create, change or
  delete: whoever controls its callback URL or secret receives admin-API tokens.

The first consumer secret is made with its key; the others, and the rules they follow,
are `admin_api.services.consumer_secrets`. `find_oauth_client` is what the resident
OAuth2 server calls.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.protobuf.empty_pb2 import Empty
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.crypto.key_manager_secrets import decrypt_key_manager_secret
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from admin_api.services import consumer_secrets, dcr, dcr_clients, key_managers, masks, ownership, users, validation
from admin_api.services.key_generation_access import key_generation_refusal
from admin_api.store.unit_of_work import Store, Writer, new_id
from admin_api.views.application_keys import (application_key_pb, consumer_secret_pb, oauth_client_settings_json,
                                              oauth_client_settings_pb)
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2
from portcullis_shared.credentials import new_opaque_credential

log = logging.getLogger(__name__)

Settings = application_keys_pb2.OAuthClientSettings
CONSUMER_KEY_PREFIX = "pcc_"
GRANT_TYPES = ("client_credentials", "password", "refresh_token", "authorization_code")
DEFAULT_GRANT_TYPES = ("client_credentials", "refresh_token")
PUBLIC_CLIENT_GRANTS = frozenset({"authorization_code", "refresh_token"})
DEFAULT_ACCESS_TOKEN_VALIDITY = 3600
DEFAULT_REFRESH_TOKEN_VALIDITY = 86400
ACCESS_TOKEN_VALIDITY_RANGE = (60, 86400)              # a minute to a day
REFRESH_TOKEN_VALIDITY_RANGE = (60, 365 * 86400)       # a minute to a year
CONSUMER_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
RESIDENT = key_managers_pb2.KeyManager.Type.Name(key_managers_pb2.KeyManager.RESIDENT)
GENERATED = application_keys_pb2.ApplicationKey.Origin.Name(application_keys_pb2.ApplicationKey.GENERATED)
MAPPED = application_keys_pb2.ApplicationKey.Origin.Name(application_keys_pb2.ApplicationKey.MAPPED)
MUTABLE = frozenset({"settings"})
IMMUTABLE = frozenset({"id", "organization_id", "application_id", "environment", "key_manager_id", "consumer_key",
                       "origin", "created_at", "updated_at"})


@dataclass(frozen=True)
class OAuthClient:
    """An application key as the resident OAuth2 server sees it."""

    application_key_id: str
    organization_id: str
    application_id: str
    application_owner: str
    environment: int                    # admin_pb2.Environment
    key_manager_id: str
    key_manager_type: int               # key_managers_pb2.KeyManager.Type
    consumer_key: str
    settings: application_keys_pb2.OAuthClientSettings   # defaults filled in
    application_name: str = ""


def find_oauth_client(store: Store, consumer_key: str) -> OAuthClient | None:
    if not consumer_key:
        return None
    with store.read() as session:
        found = session.execute(
            select(models.ApplicationKey, models.Application.owner, models.KeyManager.type, models.Application.name)
            .join(models.Application, models.Application.id == models.ApplicationKey.application_id)
            .join(models.KeyManager, models.KeyManager.id == models.ApplicationKey.key_manager_id)
            .where(models.ApplicationKey.consumer_key == consumer_key)).first()
    if found is None:
        return None
    row, owner, km_type, application_name = found
    return OAuthClient(
        application_key_id=row.id, organization_id=row.organization_id, application_id=row.application_id,
        application_owner=owner, application_name=application_name, environment=admin_pb2.Environment.Value(row.environment),
        key_manager_id=row.key_manager_id, key_manager_type=key_managers_pb2.KeyManager.Type.Value(km_type),
        consumer_key=row.consumer_key, settings=_settings(oauth_client_settings_pb(row.settings), "settings"))


def generate_application_key(store: Store, request: application_keys_pb2.GenerateApplicationKeyRequest,
                             caller: Caller) -> application_keys_pb2.ApplicationKeyWithSecret:
    environment = _environment(request.environment)
    settings = _settings(request.settings, "settings")
    description = validation.description(request.secret_description, "secret_description")
    validity = consumer_secrets.check_validity_days(request.secret_validity_days, "secret_validity_days")
    with store.read() as session:
        application, km = _target(session, request.application_id, request.key_manager_id, environment, caller)
        _check_role_restriction(session, application, km)
        _check_first_party(caller, settings.first_party, km.type)
        km_type, km_name = km.type, km.name
        registration = (km.registration_endpoint,
                        decrypt_key_manager_secret(km, "registration_access_token", store.config))
        creates_clients = km.consumer_app_creation_enabled
    now = utcnow()
    if km_type == RESIDENT:
        consumer_key = new_opaque_credential(CONSUMER_KEY_PREFIX)
        secret_value = "" if settings.public_client else new_opaque_credential(consumer_secrets.CONSUMER_SECRET_PREFIX)
    elif creates_clients:
        # Outside the write transaction: the provider may be slow.
        client = dcr.register(registration[0], registration[1],
                              dcr.client_metadata(dcr_clients.client_name(application, environment), settings),
                              timeout=store.config.http_timeout)
        consumer_key, secret_value = client.client_id, client.client_secret
    else:
        raise FailedPrecondition(f"key manager {km_name!r} does not create OAuth clients "
                                 "(consumer_app_creation_enabled is false): map an existing client's consumer key "
                                 "with MapApplicationKey", field="key_manager_id")
    try:
        with store.write() as writer:
            application, km = _target(writer.session, request.application_id, request.key_manager_id, environment,
                                      caller)
            row = _insert_key(writer, application, km, environment, consumer_key, settings, GENERATED, now)
            if km_type != RESIDENT:
                dcr_clients.remember(row, client, registration[0], store.config)
            secret = None
            if secret_value:
                expires_at = now + timedelta(days=validity) if validity else None
                secret = consumer_secrets.insert_secret(writer.session, row, secret_value, description, expires_at,
                                                        now)
            answer = application_keys_pb2.ApplicationKeyWithSecret(key=application_key_pb(row),
                                                                   consumer_secret=secret_value)
            if secret is not None:
                answer.secret.CopyFrom(consumer_secret_pb(secret))
    except Exception:
        if km_type != RESIDENT and client.registration_client_uri and dcr.same_origin(client.registration_client_uri,
                                                                                     registration[0]):
            # Not stored (a concurrent twin, a database error): the client must not outlive it.
            _deregister_quietly(dcr_clients.Registration("", client.client_id, client.registration_client_uri,
                                                         client.registration_access_token), store)
        raise
    log.info("application key generated id=%s application=%s key_manager=%s environment=%s",
             row.id, row.application_id, row.key_manager_id, row.environment)
    return answer


def map_application_key(store: Store, request: application_keys_pb2.MapApplicationKeyRequest,
                        caller: Caller) -> application_keys_pb2.ApplicationKey:
    environment = _environment(request.environment)
    settings = _settings(request.settings, "settings")
    consumer_key = request.consumer_key.strip()
    if not CONSUMER_KEY_RE.fullmatch(consumer_key):
        raise InvalidArgument("consumer_key is required: 1 to 255 printable characters without spaces",
                              field="consumer_key")
    with store.write() as writer:
        application, km = _target(writer.session, request.application_id, request.key_manager_id, environment, caller)
        if km.type == RESIDENT:
            raise FailedPrecondition("keys of the resident key manager are generated (GenerateApplicationKey), "
                                     "not mapped", field="key_manager_id")
        _check_role_restriction(writer.session, application, km)
        _check_first_party(caller, settings.first_party, km.type)
        row = _insert_key(writer, application, km, environment, consumer_key, settings, MAPPED, utcnow())
        return application_key_pb(row)


def list_application_keys(store: Store, request: application_keys_pb2.ListApplicationKeysRequest,
                          caller: Caller) -> application_keys_pb2.ListApplicationKeysResponse:
    with store.read() as session:
        application = ownership.application(session, request.application_id, caller, field="application_id")
        rows = session.scalars(select(models.ApplicationKey)
                               .where(models.ApplicationKey.application_id == application.id)
                               .order_by(models.ApplicationKey.created_at, models.ApplicationKey.id))
        return application_keys_pb2.ListApplicationKeysResponse(keys=[application_key_pb(row) for row in rows])


def get_application_key(store: Store, request: application_keys_pb2.GetApplicationKeyRequest,
                        caller: Caller) -> application_keys_pb2.ApplicationKey:
    with store.read() as session:
        return application_key_pb(_get(session, request.id, caller))


def update_application_key(store: Store, request: application_keys_pb2.UpdateApplicationKeyRequest,
                           caller: Caller) -> application_keys_pb2.ApplicationKey:
    masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    settings = _settings(request.key.settings, "key.settings")
    with store.read() as session:
        row = _get(session, request.id, caller)
        _check_first_party_change(session, caller, row, settings)
        _check_public_client(session, row, settings)
        registration = dcr_clients.registration_of(row, store.config)
        application = session.get(models.Application, row.application_id)
        name = dcr_clients.client_name(application, row.environment) if application is not None else row.consumer_key
        registration_endpoint = session.get(models.KeyManager, row.key_manager_id).registration_endpoint
    updated = None
    if registration is not None:
        # RFC 7592 §2.2, outside the write transaction; refused there, nothing changes here.
        updated = dcr.update(registration.uri, registration.access_token, registration.client_id,
                             dcr.client_metadata(name, settings), timeout=store.config.http_timeout)
    with store.write() as writer:
        row = _get(writer.session, request.id, caller)
        _check_first_party_change(writer.session, caller, row, settings)
        _check_public_client(writer.session, row, settings)
        row.settings = oauth_client_settings_json(settings)
        row.updated_at = utcnow()
        if updated is not None:
            dcr_clients.remember(row, updated, registration_endpoint or registration.uri, store.config)
        writer.upsert(row)
        return application_key_pb(row)


def _check_first_party_change(session: Session, caller: Caller, row: models.ApplicationKey,
                              settings: Settings) -> None:
    km_type = session.get(models.KeyManager, row.key_manager_id).type
    _check_first_party(caller, settings.first_party or is_first_party(row), km_type, "key.settings.first_party")


def _check_public_client(session: Session, row: models.ApplicationKey, settings: Settings) -> None:
    if settings.public_client and consumer_secrets.secrets_of(session, row.id):
        raise FailedPrecondition("this key has consumer secrets: a public client has none (delete them or "
                                 "generate a new key)", field="key.settings.public_client")


def delete_application_key(store: Store, request: application_keys_pb2.DeleteApplicationKeyRequest,
                           caller: Caller) -> Empty:
    with store.read() as session:
        row = _get(session, request.id, caller)
        if is_first_party(row) and not caller.is_admin:
            raise PermissionDenied("only admins delete a first-party application key", field="id")
        registration = dcr_clients.registration_of(row, store.config)
    if registration is not None:
        # First at the provider: refused there (FailedPrecondition, Unavailable), the key stays.
        dcr_clients.deregister(registration, timeout=store.config.http_timeout)
    with store.write() as writer:
        row = _get(writer.session, request.id, caller)
        if is_first_party(row) and not caller.is_admin:
            raise PermissionDenied("only admins delete a first-party application key", field="id")
        delete_key(writer, row)
    return Empty()


def is_first_party(row: models.ApplicationKey) -> bool:
    """The key's stored `settings.first_party`."""
    return bool((row.settings or {}).get("first_party"))


def deregister_application_clients(store: Store, application_id: str, caller: Caller) -> None:
    """Delete the registered clients of an application's keys at their providers (before
    the application and its keys are deleted here)."""
    with store.read() as session:
        application = ownership.application(session, application_id, caller)
        registrations = dcr_clients.registrations_of_application(session, application.id, store.config)
    for registration in registrations:
        dcr_clients.deregister(registration, timeout=store.config.http_timeout)


def _deregister_quietly(registration: dcr_clients.Registration, store: Store) -> None:
    try:
        dcr_clients.deregister(registration, timeout=store.config.http_timeout)
    except Exception as exc:  # the original failure is the one to report
        log.error("client %s registered but not stored, and its deletion at the provider failed: %s",
                  registration.client_id, exc)


def delete_key(writer: Writer, row: models.ApplicationKey) -> None:
    """Delete a key and its secrets (also used when its application is deleted)."""
    for secret in consumer_secrets.secrets_of(writer.session, row.id):
        writer.session.delete(secret)
    writer.session.flush()  # no relationship tells the unit of work to delete secrets first
    writer.delete(row)


def _target(session: Session, application_id: str, key_manager_id: str, environment: str,
            caller: Caller) -> tuple[models.Application, models.KeyManager]:
    application = ownership.application(session, application_id, caller, field="application_id")
    km = key_managers.get_for_keys(session, application.organization_id, key_manager_id, caller, "key_manager_id")
    if not km.enabled:
        raise FailedPrecondition(f"key manager {km.name!r} is disabled", field="key_manager_id")
    twin = session.scalars(select(models.ApplicationKey).where(
        models.ApplicationKey.application_id == application.id, models.ApplicationKey.environment == environment,
        models.ApplicationKey.key_manager_id == km.id)).first()
    if twin is not None:
        raise AlreadyExists(f"application {application.id!r} already has a {environment} key with key manager "
                            f"{km.name!r} (id {twin.id!r})", field="key_manager_id")
    return application, km


def _check_first_party(caller: Caller, first_party: bool, km_type: str,
                       field: str = "settings.first_party") -> None:
    if not first_party:
        return
    if km_type != RESIDENT:
        raise InvalidArgument(f"{field}: only clients of the resident key manager are first-party (the admin API "
                              "takes no other key manager's tokens)", field=field)
    if not caller.is_admin:
        raise PermissionDenied(f"{field}: only admins create or change a first-party application key (its users' "
                               "tokens act on the admin API)", field=field)


def _check_role_restriction(session: Session, application: models.Application, km: models.KeyManager) -> None:
    """ALLOW: the owner needs one of the roles; DENY: none of them. An owner that is not a
    user of the organization has no roles."""
    roles = users.roles_in(session, application.organization_id, application.owner)
    refusal = key_generation_refusal(km, roles, application.owner)
    if refusal:
        raise PermissionDenied(f"{refusal} (application {application.id!r})", field="key_manager_id")


def _insert_key(writer: Writer, application: models.Application, km: models.KeyManager, environment: str,
                consumer_key: str, settings: Settings, origin: str, now: datetime) -> models.ApplicationKey:
    twin = writer.session.scalars(select(models.ApplicationKey)
                                  .where(models.ApplicationKey.consumer_key == consumer_key)).first()
    if twin is not None:
        raise AlreadyExists("this consumer key is already an application key of this deployment "
                            f"(id {twin.id!r})" if twin.organization_id == application.organization_id
                            else "this consumer key is already in use", field="consumer_key")
    row = models.ApplicationKey(id=new_id(), organization_id=application.organization_id,
                                application_id=application.id, environment=environment, key_manager_id=km.id,
                                consumer_key=consumer_key, settings=oauth_client_settings_json(settings),
                                origin=origin, created_at=now, updated_at=now)
    writer.upsert(row)
    return row


def _get(session: Session, key_id: str, caller: Caller, field: str = "id") -> models.ApplicationKey:
    return ownership.application_key(session, key_id, caller, field=field)


def _environment(value: int) -> str:
    if value == admin_pb2.ENVIRONMENT_UNSPECIFIED:
        return "PRODUCTION"
    if value not in (admin_pb2.PRODUCTION, admin_pb2.SANDBOX):
        raise InvalidArgument("environment must be PRODUCTION or SANDBOX", field="environment")
    return admin_pb2.Environment.Name(value)


def _settings(given: Settings, field: str) -> Settings:
    """Validated client settings with defaults filled in."""
    result = Settings()
    result.CopyFrom(given)
    grants = list(dict.fromkeys(given.grant_types)) or list(DEFAULT_GRANT_TYPES)
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        raise InvalidArgument(f"{field}.grant_types: unknown grant type(s) {', '.join(map(repr, unknown))} "
                              f"(known: {', '.join(GRANT_TYPES)})", field=f"{field}.grant_types")
    del result.grant_types[:]
    result.grant_types.extend(grants)
    result.callback_url = validation.endpoint(given.callback_url.strip(), f"{field}.callback_url")
    if "authorization_code" in grants and not result.callback_url:
        raise InvalidArgument(f"{field}.callback_url is required with the authorization_code grant",
                              field=f"{field}.callback_url")
    if given.pkce_plain_allowed and not given.pkce_mandatory:
        raise InvalidArgument(f"{field}.pkce_plain_allowed needs pkce_mandatory (plain is a PKCE method)",
                              field=f"{field}.pkce_plain_allowed")
    if given.public_client:
        if "authorization_code" not in grants or not set(grants) <= PUBLIC_CLIENT_GRANTS:
            raise InvalidArgument(f"{field}.public_client: a public client may use only authorization_code and "
                                  "refresh_token, and needs authorization_code", field=f"{field}.public_client")
        if not given.pkce_mandatory:
            raise InvalidArgument(f"{field}.public_client needs pkce_mandatory (a client without a secret must "
                                  "prove the code is its own)", field=f"{field}.public_client")
    if given.token_type == Settings.TOKEN_TYPE_UNSPECIFIED:
        result.token_type = Settings.JWT
    elif given.token_type not in (Settings.JWT, Settings.REFERENCE):
        raise InvalidArgument(f"{field}.token_type must be JWT or REFERENCE", field=f"{field}.token_type")
    result.access_token_validity_seconds = _validity(
        given.access_token_validity_seconds, DEFAULT_ACCESS_TOKEN_VALIDITY, ACCESS_TOKEN_VALIDITY_RANGE,
        f"{field}.access_token_validity_seconds")
    result.refresh_token_validity_seconds = _validity(
        given.refresh_token_validity_seconds, DEFAULT_REFRESH_TOKEN_VALIDITY, REFRESH_TOKEN_VALIDITY_RANGE,
        f"{field}.refresh_token_validity_seconds")
    return result


def _validity(value: int, default: int, bounds: tuple[int, int], field: str) -> int:
    if value == 0:
        return default
    low, high = bounds
    if not low <= value <= high:
        raise InvalidArgument(f"{field} {value} must be between {low} and {high} seconds (0: {default})", field=field)
    return value
