"""A subscription's admin view (also its sync record)."""

from __future__ import annotations

from admin_api.db import models
from admin_api.views.timestamps import set_timestamp
from portcullis.admin.v1 import admin_pb2


def subscription_pb(row: models.Subscription) -> admin_pb2.Subscription:
    message = admin_pb2.Subscription()
    fill_subscription(message, row)
    return message


def fill_subscription(message: admin_pb2.Subscription, row: models.Subscription) -> None:
    """In place, from an ORM object or a Core row (see `fill_application`)."""
    message.id = row.id
    message.organization_id = row.organization_id
    message.application_id = row.application_id
    message.api_id = row.api_id
    message.tier = row.tier
    message.status = admin_pb2.Subscription.Status.Value(row.status)
    set_timestamp(message.created_at, row.created_at)
    set_timestamp(message.updated_at, row.updated_at)
