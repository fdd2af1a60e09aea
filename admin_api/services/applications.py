"""Applications: the consumers that subscribe to APIs and hold API keys.

Deleting an application cascades: its subscriptions are deleted (delete change records)
and its API keys are dissociated from it (upsert change records); the keys themselves
stay, bound to their API, and can be associated with another application. Its
application keys (OAuth2 clients) and their consumer secrets are deleted.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, PermissionDenied
from admin_api.services import application_keys, isolation, masks, ownership, paging, throttling_policies, validation
from admin_api.store.unit_of_work import Store, new_id
from admin_api.views.applications import application_pb
from google.protobuf.empty_pb2 import Empty
from portcullis.admin.v1 import admin_pb2

DEFAULT_TIER = "Unlimited"
MUTABLE = frozenset({"name", "owner", "throttling_tier", "description"})
IMMUTABLE = frozenset({"id", "organization_id", "created_at", "updated_at"})


def create_application(store: Store, request: admin_pb2.CreateApplicationRequest,
                       caller: Caller) -> admin_pb2.Application:
    organization_id = isolation.organization(request.organization_id, caller)
    now = utcnow()
    row = models.Application(
        id=new_id(),
        organization_id=organization_id,
        name=validation.name(request.name),
        owner=validation.subject(ownership.new_owner(request.owner, caller, "owner"), "owner"),
        throttling_tier=validation.tier(request.throttling_tier or DEFAULT_TIER, "throttling_tier"),
        description=validation.description(request.description),
        created_at=now,
        updated_at=now,
    )
    with store.write() as writer:
        throttling_policies.require(writer.session, organization_id, "APPLICATION", row.throttling_tier,
                                    "throttling_tier")
        _check_unique(writer.session, row)
        writer.upsert(row)
        return application_pb(row)


def get_application(store: Store, request: admin_pb2.GetApplicationRequest,
                    caller: Caller) -> admin_pb2.Application:
    with store.read() as session:
        return application_pb(ownership.application(session, request.id, caller))


def list_applications(store: Store, request: admin_pb2.ListApplicationsRequest,
                      caller: Caller) -> admin_pb2.ListApplicationsResponse:
    organization_id = isolation.organization(request.organization_id, caller)
    size = paging.page_size(request.page_size)
    statement = select(models.Application).where(models.Application.organization_id == organization_id)
    if request.owner:
        statement = statement.where(models.Application.owner == request.owner)
    if caller.own_resources_only:
        statement = statement.where(models.Application.owner == caller.subject)
    with store.read() as session:
        rows, token = paging.paginate(session, statement, models.Application, size=size, token=request.page_token,
                                      filters=["applications", organization_id, request.owner,
                                               caller.own_resources_only and caller.subject])
        return admin_pb2.ListApplicationsResponse(applications=[application_pb(row) for row in rows],
                                                  next_page_token=token)


def update_application(store: Store, request: admin_pb2.UpdateApplicationRequest,
                       caller: Caller) -> admin_pb2.Application:
    paths = masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    new = request.application
    with store.write() as writer:
        row = ownership.application(writer.session, request.id, caller)
        for path in paths:
            field = f"application.{path}"
            if path == "name":
                row.name = validation.name(new.name, field)
            elif path == "owner":
                if caller.own_resources_only and new.owner != caller.subject:
                    raise PermissionDenied(f"{field}: this caller may not give its application away", field=field)
                row.owner = validation.subject(new.owner, field)
            elif path == "throttling_tier":
                row.throttling_tier = throttling_policies.require(
                    writer.session, row.organization_id, "APPLICATION", new.throttling_tier or DEFAULT_TIER, field)
            elif path == "description":
                row.description = validation.description(new.description, field)
        row.updated_at = utcnow()
        _check_unique(writer.session, row)
        writer.upsert(row)
        return application_pb(row)


def delete_application(store: Store, request: admin_pb2.DeleteApplicationRequest, caller: Caller) -> Empty:
    # Its clients at external key managers first (RFC 7592): a refusal there keeps everything here.
    application_keys.deregister_application_clients(store, request.id, caller)
    with store.write() as writer:
        row = ownership.application(writer.session, request.id, caller)
        for subscription in writer.session.scalars(select(models.Subscription)
                                                   .where(models.Subscription.application_id == row.id)):
            writer.delete(subscription)
        for key in writer.session.scalars(select(models.ApiKey).where(models.ApiKey.application_id == row.id)):
            key.application_id = None
            writer.upsert(key)
        # Its OAuth2 clients (application keys) and their secrets go with it.
        for client in writer.session.scalars(select(models.ApplicationKey)
                                             .where(models.ApplicationKey.application_id == row.id)).all():
            application_keys.delete_key(writer, client)
        writer.delete(row)
    return Empty()


def _check_unique(session: Session, row: models.Application) -> None:
    with session.no_autoflush:
        twin = session.scalars(select(models.Application).where(
            models.Application.organization_id == row.organization_id,
            models.Application.owner == row.owner,
            models.Application.name == row.name,
            models.Application.id != row.id)).first()
    if twin is not None:
        raise AlreadyExists(f"owner {row.owner!r} already has an application named {row.name!r} "
                            f"(id {twin.id!r})", field="name")
