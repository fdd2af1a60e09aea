"""A key manager's sync record: what a replica needs to validate its tokens, defaults
resolved (claim presets, the resident key manager's endpoints from the public URL)."""

from __future__ import annotations

from admin_api import presets
from admin_api.config import ServiceConfig
from admin_api.crypto.key_manager_secrets import decrypt_key_manager_secret
from admin_api.db import models
from admin_api.views.key_managers import key_manager_endpoints, token_handling_pb
from portcullis.admin.v1 import key_managers_pb2
from portcullis.sync.v1 import sync_pb2


def key_manager_record(row: models.KeyManager, config: ServiceConfig) -> sync_pb2.KeyManagerRecord:
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
        token_handling=token_handling_pb(row),
        consumer_key_claims=presets.consumer_key_claims(km_type, row.consumer_key_claim),
        scopes_claims=presets.scopes_claims(row.scopes_claim),
        allowed_algorithms=row.allowed_algorithms,
        audience=row.audience,
        leeway_seconds=row.leeway_seconds,
    )
