"""Subscriptions: application ↔ API with a status that says whether calls are served."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import ClassVar

from immutables import Map

from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.identity_enum import IdentityHashedEnum
from authz_server.index.errors import PolicyError
from authz_server.index.ids import StoredId, id_text, stored_id
from authz_server.index.table import Table, TableEdit

log = logging.getLogger(__name__)

_Subscription = admin_pb2.Subscription


class SubscriptionStatus(IdentityHashedEnum):
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    PROD_ONLY_BLOCKED = "PROD_ONLY_BLOCKED"
    ON_HOLD = "ON_HOLD"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"   # a status this replica does not know: denied


_STATUSES = {
    _Subscription.ACTIVE: SubscriptionStatus.ACTIVE,
    _Subscription.BLOCKED: SubscriptionStatus.BLOCKED,
    _Subscription.PROD_ONLY_BLOCKED: SubscriptionStatus.PROD_ONLY_BLOCKED,
    _Subscription.ON_HOLD: SubscriptionStatus.ON_HOLD,
    _Subscription.REJECTED: SubscriptionStatus.REJECTED,
}


# A million of them: no __dict__, interned ids, a compact own id (index.ids), and only
# what a decision or the index needs, five slots (72 bytes with the GC header). Not kept: the organization
# (no decision reads it; the application's and the API's organizations are compared). The
# tier is an interned name shared by every subscription of that tier.
@dataclass(frozen=True, slots=True)
class SubscriptionPolicy:
    stored_id: StoredId  # the id in its compact form (index.ids)
    application_id: str
    api_id: str
    status: SubscriptionStatus
    tier: str = ""       # the SUBSCRIPTION throttling policy's name

    @property
    def id(self) -> str:
        return id_text(self.stored_id)

    @property
    def pair(self) -> tuple[str, str]:
        return (self.application_id, self.api_id)


def compile_subscription(subscription: admin_pb2.Subscription) -> SubscriptionPolicy:
    if not subscription.id or not subscription.application_id or not subscription.api_id:
        raise PolicyError("subscription record without an id, application or API")
    status = _STATUSES.get(subscription.status)
    if status is None:
        log.error("subscription %s has status %d; it will be refused", subscription.id, subscription.status)
        status = SubscriptionStatus.UNKNOWN
    return SubscriptionPolicy(
        stored_id=stored_id(subscription.id),
        application_id=sys.intern(subscription.application_id),
        api_id=sys.intern(subscription.api_id),
        status=status,
        tier=sys.intern(subscription.tier),
    )


# Subscriptions are filed per application, then per API: an application has a handful of
# them, so one small map per application costs less than a (application_id, api_id) tuple
# and a top-level entry per subscription (~50 bytes less each, a million of them).
@dataclass(frozen=True, slots=True)
class SubscriptionTable(Table):
    entity: ClassVar[str] = "subscription"
    ref_kind: ClassVar[int] = sync_pb2.SUBSCRIPTION
    by_id: Map = Map()  # stored_id (index.ids) → SubscriptionPolicy
    by_application: Map = Map()  # application_id → Map(api_id → SubscriptionPolicy)

    def for_application(self, application_id: str, api_id: str) -> SubscriptionPolicy | None:
        by_api = self.by_application.get(application_id)
        return None if by_api is None else by_api.get(api_id)

    def edit(self) -> "_SubscriptionEdit":
        return _SubscriptionEdit(self)


_NO_SUBSCRIPTIONS: Map = Map()


class _SubscriptionEdit(TableEdit):
    def __init__(self, base: SubscriptionTable) -> None:
        self.by_id = base.by_id.mutate()
        self.by_application = base.by_application.mutate()

    def upsert(self, record: admin_pb2.Subscription) -> None:
        subscription = compile_subscription(record)
        self._drop(subscription.stored_id)
        self.by_id[subscription.stored_id] = subscription
        by_api: Map = self.by_application.get(subscription.application_id, _NO_SUBSCRIPTIONS)
        self.by_application[subscription.application_id] = by_api.set(subscription.api_id, subscription)

    def delete(self, entity_id: str) -> None:
        self._drop(stored_id(entity_id))

    def _drop(self, entity_key: StoredId) -> None:
        old: SubscriptionPolicy | None = self.by_id.pop(entity_key, None)
        if old is None:
            return
        by_api: Map | None = self.by_application.get(old.application_id)
        if by_api is None:
            return
        current = by_api.get(old.api_id)
        if current is None or current.stored_id != old.stored_id:
            return  # another subscription of the same pair has been filed since
        by_api = by_api.delete(old.api_id)
        if by_api:
            self.by_application[old.application_id] = by_api
        else:
            del self.by_application[old.application_id]

    def finish(self) -> SubscriptionTable:
        return SubscriptionTable(by_id=self.by_id.finish(), by_application=self.by_application.finish())
