"""Subscriptions: an application's permission to call an API, with a tier and a status.

As in WSO2 API Manager, new subscriptions are accepted only for PUBLISHED APIs
(not CREATED, DEPRECATED, BLOCKED or RETIRED ones); existing subscriptions keep their
status through later lifecycle changes.
"""

from __future__ import annotations

from sqlalchemy import select

from admin_api.access.caller import Caller
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from admin_api.services import apis, isolation, masks, ownership, paging, throttling_policies, validation
from admin_api.store.unit_of_work import Store, new_id
from admin_api.views.subscriptions import subscription_pb
from google.protobuf.empty_pb2 import Empty
from portcullis.admin.v1 import admin_pb2

Status = admin_pb2.Subscription.Status
DEFAULT_TIER = "Unlimited"
MUTABLE = frozenset({"tier", "status"})
IMMUTABLE = frozenset({"id", "organization_id", "application_id", "api_id", "created_at", "updated_at"})


def create_subscription(store: Store, request: admin_pb2.CreateSubscriptionRequest,
                        caller: Caller) -> admin_pb2.Subscription:
    tier = request.tier or DEFAULT_TIER
    status = _status(request.status, "status", default=Status.ACTIVE)
    with store.write() as writer:
        application = ownership.application(writer.session, request.application_id, caller, field="application_id")
        api = apis.visible_api(writer.session, request.api_id, caller, field="api_id")
        if api.lifecycle_state != "PUBLISHED":
            raise FailedPrecondition(f"API {api.id!r} is {api.lifecycle_state}: new subscriptions are accepted "
                                     "only for PUBLISHED APIs", field="api_id")
        throttling_policies.require(writer.session, application.organization_id, "SUBSCRIPTION", tier, "tier")
        existing = writer.session.scalars(select(models.Subscription).where(
            models.Subscription.application_id == application.id, models.Subscription.api_id == api.id)).first()
        if existing is not None:
            raise AlreadyExists(f"application {application.id!r} is already subscribed to API {api.id!r} "
                                f"(subscription {existing.id!r})", field="api_id")
        now = utcnow()
        row = models.Subscription(id=new_id(), organization_id=application.organization_id,
                                  application_id=application.id, api_id=api.id, tier=tier,
                                  status=Status.Name(status), created_at=now, updated_at=now)
        writer.upsert(row)
        return subscription_pb(row)


def get_subscription(store: Store, request: admin_pb2.GetSubscriptionRequest,
                     caller: Caller) -> admin_pb2.Subscription:
    with store.read() as session:
        return subscription_pb(ownership.subscription(session, request.id, caller))


def list_subscriptions(store: Store, request: admin_pb2.ListSubscriptionsRequest,
                       caller: Caller) -> admin_pb2.ListSubscriptionsResponse:
    organization_id = isolation.organization(request.organization_id, caller)
    size = paging.page_size(request.page_size)
    statement = select(models.Subscription).where(models.Subscription.organization_id == organization_id)
    if request.application_id:
        statement = statement.where(models.Subscription.application_id == request.application_id)
    if request.api_id:
        statement = statement.where(models.Subscription.api_id == request.api_id)
    statement = ownership.only_own_applications(statement, caller, models.Subscription.application_id)
    with store.read() as session:
        rows, token = paging.paginate(
            session, statement, models.Subscription, size=size, token=request.page_token,
            filters=["subscriptions", organization_id, request.application_id, request.api_id,
                     caller.own_resources_only and caller.subject])
        return admin_pb2.ListSubscriptionsResponse(subscriptions=[subscription_pb(row) for row in rows],
                                                   next_page_token=token)


def update_subscription(store: Store, request: admin_pb2.UpdateSubscriptionRequest,
                        caller: Caller) -> admin_pb2.Subscription:
    paths = masks.paths(request.update_mask, mutable=MUTABLE, immutable=IMMUTABLE)
    new = request.subscription
    with store.write() as writer:
        row = ownership.subscription(writer.session, request.id, caller)
        if "status" in paths and caller.own_resources_only:
            # Blocking and approving are the admin's: a subscriber cannot unblock itself.
            raise PermissionDenied("subscription.status: only an admin may change a subscription's status",
                                   field="subscription.status")
        if "tier" in paths:
            row.tier = throttling_policies.require(writer.session, row.organization_id, "SUBSCRIPTION",
                                                   new.tier or DEFAULT_TIER, "subscription.tier")
        if "status" in paths:
            row.status = Status.Name(_status(new.status, "subscription.status"))
        row.updated_at = utcnow()
        writer.upsert(row)
        return subscription_pb(row)


def delete_subscription(store: Store, request: admin_pb2.DeleteSubscriptionRequest, caller: Caller) -> Empty:
    with store.write() as writer:
        writer.delete(ownership.subscription(writer.session, request.id, caller))
    return Empty()


def _status(value: int, field: str, default: int | None = None) -> int:
    if value == Status.STATUS_UNSPECIFIED and default is not None:
        return default
    if value not in Status.values() or value == Status.STATUS_UNSPECIFIED:
        names = ", ".join(n for n in Status.keys() if n != "STATUS_UNSPECIFIED")
        raise InvalidArgument(f"{field} must be one of {names}", field=field)
    return value
