"""The first credential of a new organization (issue 18 item 4).

A new organization has no user and no credential, and every other credential acts only
in its own organization, so nothing could be made in it. An admin of the default
organization (the deployment's super-admins) may give it one bootstrap admin
credential: a bearer token with the admin role that acts only in that organization
(subject `bootstrap-admin:<id>`), stored as its SHA-256 in `admin_credentials` like the
deployment's own bootstrap token (so every admin_api replica takes it at once), and
shown once. With it the organization's admin makes its users, applications and the
rest; it grants nothing in another organization, and the super-admin gets nothing more
across organizations than this.

Asking again is ALREADY_EXISTS unless `rotate`: then the stored hash is replaced in the
same transaction, so the old token stops working at once on every replica. Each call is
audited in both organizations: the caller's record (the Dispatcher's) and one in the
target organization's own log, so its admins see who made their credential.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller, Role
from admin_api.audit import log as audit_log
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from admin_api.services.organizations import DEFAULT_ORGANIZATION
from admin_api.store.unit_of_work import Store, new_id
from admin_api.views.timestamps import timestamp
from portcullis.admin.v1 import admin_pb2
from portcullis_shared.credentials import ADMIN_TOKEN_PREFIX, credential_hash, new_opaque_credential

BOOTSTRAP_ADMIN_SUBJECT = "bootstrap-admin"   # the deployment's own, of the default organization
METHOD = "portcullis.admin.v1.OrganizationService/CreateOrganizationAdminCredential"


def admin_subject(organization_id: str) -> str:
    """The subject of an organization's bootstrap admin credential."""
    return f"{BOOTSTRAP_ADMIN_SUBJECT}:{organization_id}"


def create_organization_admin_credential(
        store: Store, request: admin_pb2.CreateOrganizationAdminCredentialRequest,
        caller: Caller) -> admin_pb2.CreateOrganizationAdminCredentialResponse:
    if not caller.is_admin or caller.organization_id != DEFAULT_ORGANIZATION:
        raise PermissionDenied("only an admin of the default organization may create an organization's "
                               "admin credential")
    if not request.id:
        raise InvalidArgument("id is required", field="id")
    if request.id == DEFAULT_ORGANIZATION:
        raise InvalidArgument("the default organization has the deployment's bootstrap admin token; an "
                              "organization admin credential is for another organization", field="id")
    subject = admin_subject(request.id)
    token = new_opaque_credential(ADMIN_TOKEN_PREFIX)
    now = utcnow()
    with store.write() as writer:
        session = writer.session
        if session.get(models.Organization, request.id) is None:
            raise NotFound(f"organization {request.id!r} not found", field="id")
        existing = session.scalars(select(models.AdminCredential)
                                   .where(models.AdminCredential.subject == subject)
                                   .with_for_update()).first()
        if existing is not None and not request.rotate:
            raise AlreadyExists(f"organization {request.id!r} has an admin credential already (shown once when "
                                "it was made); send rotate=true to replace it", field="id")
        if existing is None:
            session.add(models.AdminCredential(id=new_id(), token_hash=credential_hash(token), role=Role.ADMIN.value,
                                               organization_id=request.id, subject=subject, created_at=now))
        else:
            existing.token_hash = credential_hash(token)   # the old token matches nothing from this commit on
            existing.created_at = now
        rotated = existing is not None
        _audit_in_target(session, caller, request.id, subject, rotated)
    return admin_pb2.CreateOrganizationAdminCredentialResponse(
        organization_id=request.id, subject=subject, role=Role.ADMIN.value, created_at=timestamp(now),
        rotated=rotated, value=token)


def _audit_in_target(session: Session, caller: Caller, organization_id: str, subject: str, rotated: bool) -> None:
    """The target organization's own record of the change (the caller's organization gets
    the Dispatcher's); identifiers only, never the token."""
    done = "rotated" if rotated else "created"
    audit_log.append(session, audit_log.Entry(caller, METHOD, "organization", organization_id),
                     audit_log.SUCCEEDED, target_id=organization_id, organization_id=organization_id,
                     detail=f"admin credential {subject} {done} by {caller.subject} of organization "
                            f"{caller.organization_id!r}")
