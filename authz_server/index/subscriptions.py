"""Subscriptions: application ↔ API with a status that says whether calls are served."""

from __future__ import annotations

import enum
import logging
import sys
from dataclasses import dataclass

from portcullis.admin.v1 import admin_pb2

from authz_server.index.errors import PolicyError
from authz_server.index.ids import StoredId, id_text, stored_id

log = logging.getLogger(__name__)

_Subscription = admin_pb2.Subscription


class SubscriptionStatus(enum.Enum):
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
# what a decision or the index needs, four slots (64 bytes with the GC header). Not kept: the tier and the organization
# (no decision reads them; the application's and the API's organizations are compared).
@dataclass(frozen=True, slots=True)
class SubscriptionPolicy:
    stored_id: StoredId  # the id in its compact form (index.ids)
    application_id: str
    api_id: str
    status: SubscriptionStatus

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
    )
