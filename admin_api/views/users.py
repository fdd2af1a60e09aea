"""A user's admin view (never the password nor its hash) and a scope's."""

from __future__ import annotations

from admin_api.db import models
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import users_pb2


def user_pb(row: models.User) -> users_pb2.User:
    return users_pb2.User(id=row.id, organization_id=row.organization_id, username=row.username,
                          roles=row.roles, created_at=timestamp(row.created_at), updated_at=timestamp(row.updated_at))


def scope_pb(row: models.Scope) -> users_pb2.Scope:
    return users_pb2.Scope(id=row.id, organization_id=row.organization_id, name=row.name,
                           description=row.description, roles=row.roles, created_at=timestamp(row.created_at))
