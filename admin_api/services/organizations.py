"""Organizations (tenants). The default organization is created at start-up.

Only an admin of the default organization may create organizations or list them all;
an admin of another organization lists only its own.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, InvalidArgument, PermissionDenied
from admin_api.services import key_managers, throttling_policies, validation
from admin_api.store.unit_of_work import Store, Writer
from admin_api.views.organizations import organization_pb
from portcullis.admin.v1 import admin_pb2

DEFAULT_ORGANIZATION = "default"
ORGANIZATION_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,61}[a-z0-9]")


def ensure_default(store: Store) -> None:
    """Create the default organization unless it exists (idempotent, at start-up)."""
    with store.write() as writer:
        if writer.session.get(models.Organization, DEFAULT_ORGANIZATION) is None:
            _insert(writer, DEFAULT_ORGANIZATION, "Default organization")
        else:
            throttling_policies.ensure_defaults(writer, DEFAULT_ORGANIZATION)


def create_organization(store: Store, request: admin_pb2.CreateOrganizationRequest,
                        caller: Caller) -> admin_pb2.Organization:
    if not caller.is_admin or caller.organization_id != DEFAULT_ORGANIZATION:
        raise PermissionDenied("only an admin of the default organization may create organizations")
    if not ORGANIZATION_ID_RE.fullmatch(request.id):
        raise InvalidArgument(f"id {request.id!r} must be 2 to 63 lowercase letters, digits or '-', "
                              "starting and ending with a letter or digit", field="id")
    display_name = request.name or request.id
    validation.name(display_name)
    with store.write() as writer:
        if writer.session.get(models.Organization, request.id) is not None:
            raise AlreadyExists(f"organization {request.id!r} already exists", field="id")
        return organization_pb(_insert(writer, request.id, display_name))


def list_organizations(store: Store, request: admin_pb2.ListOrganizationsRequest,
                       caller: Caller) -> admin_pb2.ListOrganizationsResponse:
    statement = select(models.Organization).order_by(models.Organization.created_at, models.Organization.id)
    if caller.organization_id != DEFAULT_ORGANIZATION:
        statement = statement.where(models.Organization.id == caller.organization_id)
    with store.read() as session:
        return admin_pb2.ListOrganizationsResponse(
            organizations=[organization_pb(row) for row in session.scalars(statement)])


def _insert(writer: Writer, organization_id: str, display_name: str) -> models.Organization:
    row = models.Organization(id=organization_id, name=display_name, created_at=utcnow())
    writer.upsert(row)
    key_managers.ensure_resident(writer, organization_id)
    throttling_policies.ensure_defaults(writer, organization_id)
    return row
