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
from admin_api.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from admin_api.services import key_managers, masks, throttling_policies, validation
from admin_api.store.unit_of_work import Store, Writer
from admin_api.views.organizations import organization_pb
from portcullis.admin.v1 import admin_pb2

DEFAULT_ORGANIZATION = "default"
MUTABLE = frozenset({"name", "self_signup"})
IMMUTABLE = frozenset({"id", "created_at"})
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


def update_organization(store: Store, request: admin_pb2.UpdateOrganizationRequest,
                        caller: Caller) -> admin_pb2.Organization:
    """An admin changes its own organization (an admin of the default one: any)."""
    paths = masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    if request.id != caller.organization_id and caller.organization_id != DEFAULT_ORGANIZATION:
        raise PermissionDenied("an admin changes only its own organization")
    if "name" in paths:
        validation.name(request.organization.name)
    with store.write() as writer:
        row = writer.session.get(models.Organization, request.id)
        if row is None:
            raise NotFound(f"organization {request.id!r} not found")
        if "name" in paths:
            row.name = request.organization.name
        if "self_signup" in paths:
            row.self_signup = request.organization.self_signup
        writer.upsert(row)
        return organization_pb(row)


def self_signup_allowed(store: Store, organization_id: str) -> bool:
    """Whether the organization exists and lets anyone sign up as a subscriber."""
    with store.read() as session:
        row = session.get(models.Organization, organization_id)
        return row is not None and bool(row.self_signup)


def _insert(writer: Writer, organization_id: str, display_name: str) -> models.Organization:
    row = models.Organization(id=organization_id, name=display_name, created_at=utcnow(), self_signup=False)
    writer.upsert(row)
    key_managers.ensure_resident(writer, organization_id)
    throttling_policies.ensure_defaults(writer, organization_id)
    return row
