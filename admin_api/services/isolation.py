"""Organization isolation: a caller sees and changes only its own organization's entities."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.errors import InvalidArgument, NotFound, PermissionDenied

Owned = TypeVar("Owned", models.Api, models.Application, models.Subscription, models.ApiKey, models.KeyManager,
                models.ApplicationKey, models.User, models.Scope)


def organization(requested: str, caller: Caller) -> str:
    """The organization a create or list acts in: empty means the caller's own."""
    if requested and requested != caller.organization_id:
        raise PermissionDenied(f"organization_id {requested!r}: this credential acts only in organization "
                               f"{caller.organization_id!r}", field="organization_id")
    return caller.organization_id


def get(session: Session, model: type[Owned], entity_id: str, caller: Caller, *, field: str = "id",
        what: str | None = None) -> Owned:
    """The caller's entity with this id; another organization's entity is NOT_FOUND too, so
    that ids of other organizations cannot be probed."""
    label = what or model.__tablename__[:-1].replace("_", " ")
    if not entity_id:
        raise InvalidArgument(f"{field} is required", field=field)
    row = session.get(model, entity_id)
    if row is None or row.organization_id != caller.organization_id:
        raise NotFound(f"{label} {entity_id!r} not found", field=field)
    return row
