"""Rows → protobuf messages: the admin view of each entity and its sync record.

One function per entity; `policy_entity` picks the right one for the change log and the
snapshot. The API key's admin view carries only the masked value, its sync record only
the hash.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from admin_api import presets
from admin_api.db import models, oauth_models
from admin_api.db.backend_jwt_models import BackendSigningKey, private_key_aad
from admin_api.config import ServiceConfig
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2, users_pb2
from portcullis.sync.v1 import sync_pb2

EntityRow = (models.Organization | models.Api | models.Application | models.Subscription | models.ApiKey
             | models.KeyManager | models.ApplicationKey | oauth_models.RevokedToken | BackendSigningKey)

ENTITY_KINDS: dict[type, int] = {
    models.Organization: sync_pb2.ORGANIZATION,
    models.Api: sync_pb2.API,
    models.Application: sync_pb2.APPLICATION,
    models.Subscription: sync_pb2.SUBSCRIPTION,
    models.ApiKey: sync_pb2.API_KEY,
    models.KeyManager: sync_pb2.KEY_MANAGER,
    models.ApplicationKey: sync_pb2.APPLICATION_KEY,
    oauth_models.RevokedToken: sync_pb2.REVOKED_TOKEN,
    BackendSigningKey: sync_pb2.BACKEND_SIGNING_KEY,
}

# Associated data binding an encrypted key-manager secret to its row and column.
def key_manager_aad(key_manager_id: str, column: str) -> bytes:
    return f"key_manager:{key_manager_id}:{column}".encode()


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def _ts(value: datetime) -> Timestamp:
    """What `Timestamp.FromDatetime` gives (naive counts as UTC), at a third of its cost:
    a snapshot converts two million of these."""
    epoch = _NAIVE_EPOCH if value.tzinfo is None else _EPOCH
    return Timestamp(seconds=(value - epoch) // _SECOND, nanos=value.microsecond * 1000)


def _set_ts(field: Timestamp, value: datetime) -> None:
    """`_ts` written into a message's own field (marks it present even at the epoch)."""
    epoch = _NAIVE_EPOCH if value.tzinfo is None else _EPOCH
    field.seconds = (value - epoch) // _SECOND
    field.nanos = value.microsecond * 1000


def organization_pb(row: models.Organization) -> admin_pb2.Organization:
    return admin_pb2.Organization(id=row.id, name=row.name, created_at=_ts(row.created_at))


def security_pb(stored: dict) -> admin_pb2.SecuritySchemes:
    return json_format.ParseDict(stored, admin_pb2.SecuritySchemes())


def security_json(message: admin_pb2.SecuritySchemes) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def resource_pb(stored: dict) -> admin_pb2.Resource:
    return admin_pb2.Resource(method=stored["method"], path=stored["path"], open=stored["open"],
                              scopes=stored.get("scopes", []))


def resource_json(resource: admin_pb2.Resource) -> dict:
    return {"method": resource.method, "path": resource.path, "open": resource.open,
            "scopes": list(resource.scopes)}


def backend_jwt_pb(stored: dict) -> admin_pb2.BackendJwtConfig:
    return json_format.ParseDict(stored, admin_pb2.BackendJwtConfig())


def backend_jwt_json(message: admin_pb2.BackendJwtConfig) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def api_pb(row: models.Api) -> admin_pb2.Api:
    message = admin_pb2.Api(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        version=row.version,
        context=row.context,
        base_path=row.base_path,
        production_endpoint=row.production_endpoint,
        sandbox_endpoint=row.sandbox_endpoint,
        resources=[resource_pb(r) for r in row.resources],
        security=security_pb(row.security),
        subscription_less=row.subscription_less,
        lifecycle_state=admin_pb2.Api.LifecycleState.Value(row.lifecycle_state),
        description=row.description,
        created_at=_ts(row.created_at),
        updated_at=_ts(row.updated_at),
        pass_authorization_header=bool(row.pass_authorization_header),
    )
    if row.backend_jwt is not None:
        message.backend_jwt.CopyFrom(backend_jwt_pb(row.backend_jwt))
    return message


def application_pb(row: models.Application) -> admin_pb2.Application:
    message = admin_pb2.Application()
    fill_application(message, row)
    return message


def fill_application(message: admin_pb2.Application, row: models.Application) -> None:
    """Fields set in place (a third of the cost of keyword construction and a copy into
    the parent). `row` is an ORM object or a Core row: only attributes are read."""
    message.id = row.id
    message.organization_id = row.organization_id
    message.name = row.name
    message.owner = row.owner
    message.throttling_tier = row.throttling_tier
    message.description = row.description
    _set_ts(message.created_at, row.created_at)
    _set_ts(message.updated_at, row.updated_at)


def subscription_pb(row: models.Subscription) -> admin_pb2.Subscription:
    message = admin_pb2.Subscription()
    fill_subscription(message, row)
    return message


def fill_subscription(message: admin_pb2.Subscription, row: models.Subscription) -> None:
    message.id = row.id
    message.organization_id = row.organization_id
    message.application_id = row.application_id
    message.api_id = row.api_id
    message.tier = row.tier
    message.status = admin_pb2.Subscription.Status.Value(row.status)
    _set_ts(message.created_at, row.created_at)
    _set_ts(message.updated_at, row.updated_at)


def api_key_pb(row: models.ApiKey) -> admin_pb2.ApiKey:
    message = admin_pb2.ApiKey(
        id=row.id,
        organization_id=row.organization_id,
        api_id=row.api_id,
        name=row.name,
        environment=admin_pb2.Environment.Value(row.environment),
        application_id=row.application_id or "",
        allowed_ips=row.allowed_ips,
        allowed_referrers=row.allowed_referrers,
        status=admin_pb2.ApiKey.Status.Value(row.status),
        masked_value=row.masked_value,
        owner=row.owner,
        created_at=_ts(row.created_at),
        revoked_by=row.revoked_by,
        replaced_by=row.replaced_by,
    )
    if row.expires_at is not None:
        message.expires_at.CopyFrom(_ts(row.expires_at))
    if row.revoked_at is not None:
        message.revoked_at.CopyFrom(_ts(row.revoked_at))
    return message


def api_key_record(row: models.ApiKey) -> sync_pb2.ApiKeyRecord:
    message = sync_pb2.ApiKeyRecord()
    fill_api_key_record(message, row)
    return message


def fill_api_key_record(message: sync_pb2.ApiKeyRecord, row: models.ApiKey) -> None:
    message.id = row.id
    message.organization_id = row.organization_id
    message.api_id = row.api_id
    message.key_hash = row.key_hash
    message.environment = admin_pb2.Environment.Value(row.environment)
    message.application_id = row.application_id or ""
    message.allowed_ips.extend(row.allowed_ips)
    message.allowed_referrers.extend(row.allowed_referrers)
    message.expires_at_unix = int(row.expires_at.timestamp()) if row.expires_at is not None else 0
    message.revoked = row.status == "REVOKED"


def key_manager_endpoints(row: models.KeyManager, config: ServiceConfig) -> dict[str, str]:
    """Issuer and endpoints: stored for external key managers, derived from the public
    URL for the resident one (so a port change is harmless)."""
    fields = ("discovery_url", "issuer", "jwks_uri", "token_endpoint", "authorization_endpoint",
              "revocation_endpoint", "introspection_endpoint", "registration_endpoint", "userinfo_endpoint")
    if row.type == "RESIDENT":
        derived = presets.resident_endpoints(config.public_url)
        return {field: derived.get(field, "") for field in fields}
    return {field: getattr(row, field) for field in fields}


def key_manager_pb(row: models.KeyManager, config: ServiceConfig) -> key_managers_pb2.KeyManager:
    """The admin view: write-only secrets appear only as *_set flags."""
    return key_managers_pb2.KeyManager(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        display_name=row.display_name,
        description=row.description,
        type=key_managers_pb2.KeyManager.Type.Value(row.type),
        enabled=row.enabled,
        certificate_pem=row.certificate_pem,
        introspection_client_id=row.introspection_client_id,
        introspection_client_secret_set=row.introspection_client_secret_encrypted is not None,
        registration_access_token_set=row.registration_access_token_encrypted is not None,
        token_handling=key_managers_pb2.TokenHandling(accepts_jwt=row.accepts_jwt,
                                                      accepts_reference_tokens=row.accepts_reference_tokens,
                                                      token_format_pattern=row.token_format_pattern),
        claim_mappings=key_managers_pb2.ClaimMappings(consumer_key_claim=row.consumer_key_claim,
                                                      scopes_claim=row.scopes_claim),
        allowed_algorithms=row.allowed_algorithms,
        audience=row.audience,
        leeway_seconds=row.leeway_seconds,
        consumer_app_creation_enabled=row.consumer_app_creation_enabled,
        key_generation_allowed_roles=row.key_generation_allowed_roles,
        key_generation_denied_roles=row.key_generation_denied_roles,
        created_at=_ts(row.created_at),
        updated_at=_ts(row.updated_at),
        **key_manager_endpoints(row, config),
    )


def decrypt_key_manager_secret(row: models.KeyManager, column: str, config: ServiceConfig) -> str:
    ciphertext = getattr(row, column + "_encrypted")
    if ciphertext is None:
        return ""
    return config.require_kek().decrypt(ciphertext, key_manager_aad(row.id, column)).decode()


def key_manager_record(row: models.KeyManager, config: ServiceConfig) -> sync_pb2.KeyManagerRecord:
    """What a replica needs to validate this key manager's tokens, defaults resolved."""
    km_type = key_managers_pb2.KeyManager.Type.Value(row.type)
    endpoints = key_manager_endpoints(row, config)
    resident = km_type == key_managers_pb2.KeyManager.RESIDENT
    return sync_pb2.KeyManagerRecord(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        type=km_type,
        enabled=row.enabled,
        issuer=endpoints["issuer"],
        jwks_uri=endpoints["jwks_uri"],
        certificate_pem=row.certificate_pem,
        introspection_endpoint=endpoints["introspection_endpoint"],
        introspection_client_id="" if resident else row.introspection_client_id,
        introspection_client_secret="" if resident else decrypt_key_manager_secret(
            row, "introspection_client_secret", config),
        introspection_with_sync_token=resident,
        token_handling=key_managers_pb2.TokenHandling(accepts_jwt=row.accepts_jwt,
                                                      accepts_reference_tokens=row.accepts_reference_tokens,
                                                      token_format_pattern=row.token_format_pattern),
        consumer_key_claims=presets.consumer_key_claims(km_type, row.consumer_key_claim),
        scopes_claims=presets.scopes_claims(row.scopes_claim),
        allowed_algorithms=row.allowed_algorithms,
        audience=row.audience,
        leeway_seconds=row.leeway_seconds,
    )


def oauth_client_settings_pb(stored: dict) -> application_keys_pb2.OAuthClientSettings:
    return json_format.ParseDict(stored, application_keys_pb2.OAuthClientSettings())


def oauth_client_settings_json(message: application_keys_pb2.OAuthClientSettings) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def application_key_pb(row: models.ApplicationKey) -> application_keys_pb2.ApplicationKey:
    return application_keys_pb2.ApplicationKey(
        id=row.id,
        organization_id=row.organization_id,
        application_id=row.application_id,
        environment=admin_pb2.Environment.Value(row.environment),
        key_manager_id=row.key_manager_id,
        consumer_key=row.consumer_key,
        settings=oauth_client_settings_pb(row.settings),
        origin=application_keys_pb2.ApplicationKey.Origin.Value(row.origin),
        created_at=_ts(row.created_at),
        updated_at=_ts(row.updated_at),
    )


def application_key_record(row: models.ApplicationKey) -> sync_pb2.ApplicationKeyRecord:
    return sync_pb2.ApplicationKeyRecord(
        id=row.id,
        organization_id=row.organization_id,
        application_id=row.application_id,
        environment=admin_pb2.Environment.Value(row.environment),
        key_manager_id=row.key_manager_id,
        consumer_key=row.consumer_key,
    )


def consumer_secret_pb(row: models.ConsumerSecret) -> application_keys_pb2.ConsumerSecret:
    message = application_keys_pb2.ConsumerSecret(
        id=row.id,
        application_key_id=row.application_key_id,
        description=row.description,
        masked_value=row.masked_value,
        created_at=_ts(row.created_at),
    )
    if row.expires_at is not None:
        message.expires_at.CopyFrom(_ts(row.expires_at))
    return message


def user_pb(row: models.User) -> users_pb2.User:
    """Never the password (nor its hash)."""
    return users_pb2.User(id=row.id, organization_id=row.organization_id, username=row.username,
                          roles=row.roles, created_at=_ts(row.created_at), updated_at=_ts(row.updated_at))


def scope_pb(row: models.Scope) -> users_pb2.Scope:
    return users_pb2.Scope(id=row.id, organization_id=row.organization_id, name=row.name,
                           description=row.description, roles=row.roles, created_at=_ts(row.created_at))


def revoked_token_record(row: oauth_models.RevokedToken) -> sync_pb2.RevokedTokenRecord:
    return sync_pb2.RevokedTokenRecord(id=row.id, organization_id=row.organization_id,
                                       key_manager_id=row.key_manager_id,
                                       expires_at_unix=int(row.expires_at.timestamp()))


def _unix(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def backend_signing_key_record(row: BackendSigningKey, config: ServiceConfig) -> sync_pb2.BackendSigningKeyRecord:
    """With the private key in clear: the outbox seals the change-log payload with the KEK."""
    return sync_pb2.BackendSigningKeyRecord(
        id=row.id,
        algorithm=row.algorithm,
        private_key_pem=config.require_kek().decrypt(row.private_key_encrypted,
                                                     private_key_aad(row.id)).decode("ascii"),
        public_jwk_json=json.dumps(row.public_jwk, sort_keys=True, separators=(",", ":")),
        not_before_unix=_unix(row.activated_at),
        retired_at_unix=_unix(row.retired_at),
        expires_at_unix=_unix(row.expires_at),
    )


def policy_entity(row: EntityRow, config: ServiceConfig | None = None) -> sync_pb2.PolicyEntity:
    if isinstance(row, BackendSigningKey):
        return sync_pb2.PolicyEntity(backend_signing_key=backend_signing_key_record(row, config or ServiceConfig()))
    if isinstance(row, oauth_models.RevokedToken):
        return sync_pb2.PolicyEntity(revoked_token=revoked_token_record(row))
    if isinstance(row, models.KeyManager):
        return sync_pb2.PolicyEntity(key_manager=key_manager_record(row, config or ServiceConfig()))
    if isinstance(row, models.ApplicationKey):
        return sync_pb2.PolicyEntity(application_key=application_key_record(row))
    if isinstance(row, models.Organization):
        return sync_pb2.PolicyEntity(organization=organization_pb(row))
    if isinstance(row, models.Api):
        return sync_pb2.PolicyEntity(api=api_pb(row))
    entity = sync_pb2.PolicyEntity()
    if isinstance(row, models.Application):
        fill_application(entity.application, row)
    elif isinstance(row, models.Subscription):
        fill_subscription(entity.subscription, row)
    else:
        fill_api_key_record(entity.api_key, row)
    return entity
