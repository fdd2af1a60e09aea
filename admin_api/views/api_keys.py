"""An API key's admin view: the masked value only (its sync record carries only the hash)."""

from __future__ import annotations

from admin_api.db import models
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import admin_pb2


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
        created_at=timestamp(row.created_at),
        revoked_by=row.revoked_by,
        replaced_by=row.replaced_by,
    )
    if row.expires_at is not None:
        message.expires_at.CopyFrom(timestamp(row.expires_at))
    if row.revoked_at is not None:
        message.revoked_at.CopyFrom(timestamp(row.revoked_at))
    return message
