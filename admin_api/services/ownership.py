"""Own resources only: what a caller restricted to its own resources (a subscriber; see
admin_api.access.permissions) may see and change.

Applications and API keys have an owner; subscriptions and application keys (and their
consumer secrets) belong to their application's owner. Someone else's resource is
NOT_FOUND, exactly like a resource that does not exist, so that ids cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.errors import NotFound, PermissionDenied
from admin_api.services import isolation


def visible(caller: Caller, owner: str) -> bool:
    return not caller.own_resources_only or owner == caller.subject


def application(session: Session, application_id: str, caller: Caller, *, field: str = "id") -> models.Application:
    row = isolation.get(session, models.Application, application_id, caller, field=field)
    _check(caller, row.owner, f"application {application_id!r} not found", field)
    return row


def subscription(session: Session, subscription_id: str, caller: Caller) -> models.Subscription:
    row = isolation.get(session, models.Subscription, subscription_id, caller)
    _check(caller, _application_owner(session, row.application_id), f"subscription {subscription_id!r} not found",
           "id")
    return row


def api_key(session: Session, key_id: str, caller: Caller) -> models.ApiKey:
    row = isolation.get(session, models.ApiKey, key_id, caller, what="API key")
    _check(caller, row.owner, f"API key {key_id!r} not found", "id")
    return row


def application_key(session: Session, key_id: str, caller: Caller, *, field: str = "id") -> models.ApplicationKey:
    row = isolation.get(session, models.ApplicationKey, key_id, caller, field=field, what="application key")
    _check(caller, _application_owner(session, row.application_id), f"application key {key_id!r} not found", field)
    return row


def new_owner(requested: str, caller: Caller, field: str) -> str:
    """The owner of a new (or re-owned) application: the caller itself when restricted."""
    owner = requested or caller.subject
    if caller.own_resources_only and owner != caller.subject:
        raise PermissionDenied(f"{field}: this caller may only own applications itself ({caller.subject!r})",
                               field=field)
    return owner


def only_own_applications(statement: Select, caller: Caller, application_id_column: object) -> Select:
    """Restrict a list of rows that belong to applications to the caller's applications."""
    if not caller.own_resources_only:
        return statement
    owned = select(models.Application.id).where(models.Application.organization_id == caller.organization_id,
                                                models.Application.owner == caller.subject)
    return statement.where(application_id_column.in_(owned))  # type: ignore[attr-defined]


def _application_owner(session: Session, application_id: str) -> str:
    row = session.get(models.Application, application_id)
    return row.owner if row is not None else ""


def _check(caller: Caller, owner: str, message: str, field: str) -> None:
    if not visible(caller, owner):
        raise NotFound(message, field=field)
