"""An API key's sync record: its hash and restrictions, never its value."""

from __future__ import annotations

from admin_api.db import models
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2


def fill_api_key_record(message: sync_pb2.ApiKeyRecord, row: models.ApiKey) -> None:
    """In place, from an ORM object or a Core row of the columns the snapshot reads."""
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
