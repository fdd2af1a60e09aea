"""A revoked token's sync record: replicas refuse its JWT until it would have expired."""

from __future__ import annotations

from admin_api.db.oauth_models import RevokedToken
from portcullis.sync.v1 import sync_pb2


def revoked_token_record(row: RevokedToken) -> sync_pb2.RevokedTokenRecord:
    return sync_pb2.RevokedTokenRecord(id=row.id, organization_id=row.organization_id,
                                       key_manager_id=row.key_manager_id,
                                       expires_at_unix=int(row.expires_at.timestamp()))
