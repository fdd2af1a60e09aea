"""A key manager's admin view, and its issuer and endpoints (shared with its sync record)."""

from __future__ import annotations

from admin_api import presets
from admin_api.config import ServiceConfig
from admin_api.db import models
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import key_managers_pb2

ENDPOINT_FIELDS = ("discovery_url", "issuer", "jwks_uri", "token_endpoint", "authorization_endpoint",
                   "revocation_endpoint", "introspection_endpoint", "registration_endpoint", "userinfo_endpoint")


def key_manager_endpoints(row: models.KeyManager, config: ServiceConfig) -> dict[str, str]:
    """Issuer and endpoints: stored for external key managers, derived from the public
    URL for the resident one (so a port change is harmless)."""
    if row.type == "RESIDENT":
        derived = presets.resident_endpoints(config.public_url)
        return {field: derived.get(field, "") for field in ENDPOINT_FIELDS}
    return {field: getattr(row, field) for field in ENDPOINT_FIELDS}


def token_handling_pb(row: models.KeyManager) -> key_managers_pb2.TokenHandling:
    return key_managers_pb2.TokenHandling(accepts_jwt=row.accepts_jwt,
                                          accepts_reference_tokens=row.accepts_reference_tokens,
                                          token_format_pattern=row.token_format_pattern)


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
        token_handling=token_handling_pb(row),
        claim_mappings=key_managers_pb2.ClaimMappings(consumer_key_claim=row.consumer_key_claim,
                                                      scopes_claim=row.scopes_claim),
        allowed_algorithms=row.allowed_algorithms,
        audience=row.audience,
        leeway_seconds=row.leeway_seconds,
        consumer_app_creation_enabled=row.consumer_app_creation_enabled,
        key_generation_allowed_roles=row.key_generation_allowed_roles,
        key_generation_denied_roles=row.key_generation_denied_roles,
        created_at=timestamp(row.created_at),
        updated_at=timestamp(row.updated_at),
        **key_manager_endpoints(row, config),
    )
