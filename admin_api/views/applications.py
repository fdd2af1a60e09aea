"""An application's admin view (also its sync record)."""

from __future__ import annotations

from admin_api.db import models
from admin_api.views.timestamps import set_timestamp
from portcullis.admin.v1 import admin_pb2


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
    set_timestamp(message.created_at, row.created_at)
    set_timestamp(message.updated_at, row.updated_at)
