"""An application key's sync record: which application a consumer key stands for, in
which environment, at which key manager (no settings, no secrets)."""

from __future__ import annotations

from admin_api.db import models
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2


def application_key_record(row: models.ApplicationKey) -> sync_pb2.ApplicationKeyRecord:
    return sync_pb2.ApplicationKeyRecord(
        id=row.id,
        organization_id=row.organization_id,
        application_id=row.application_id,
        environment=admin_pb2.Environment.Value(row.environment),
        key_manager_id=row.key_manager_id,
        consumer_key=row.consumer_key,
    )
