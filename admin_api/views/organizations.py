"""An organization's admin view (also its sync record: replicas need nothing else)."""

from __future__ import annotations

from admin_api.db import models
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import admin_pb2


def organization_pb(row: models.Organization) -> admin_pb2.Organization:
    return admin_pb2.Organization(id=row.id, name=row.name, created_at=timestamp(row.created_at),
                                  self_signup=bool(row.self_signup))
