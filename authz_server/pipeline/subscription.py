"""Stage 4, subscription: the key's application must hold a subscription that serves."""

from __future__ import annotations

from authz_server.denials import (
    ApiKeyNotAssociated,
    SubscriptionInactive,
    SubscriptionMissing,
    SubscriptionProductionBlocked,
)
from authz_server.context import Identity, Route
from authz_server.index.api_keys import KeyEnvironment
from authz_server.index.policy_index import PolicyIndex
from authz_server.index.subscriptions import SubscriptionPolicy, SubscriptionStatus


def check_subscription(route: Route, identity: Identity, index: PolicyIndex) -> SubscriptionPolicy | None:
    """None for a subscription-less API; else the subscription that allows the call."""
    api = route.api
    if api.subscription_less:
        return None
    application = index.applications.get(identity.application_id) if identity.application_id else None
    if application is None:
        raise ApiKeyNotAssociated()
    subscription = index.subscriptions.for_application(application.id, api.id)
    if subscription is None or application.organization_id != api.organization_id:
        raise SubscriptionMissing()
    if subscription.status is SubscriptionStatus.ACTIVE:
        return subscription
    if subscription.status is SubscriptionStatus.PROD_ONLY_BLOCKED:
        if identity.environment is KeyEnvironment.PRODUCTION:
            raise SubscriptionProductionBlocked()
        return subscription
    raise SubscriptionInactive(f"The subscription to this API is {subscription.status.value}.")
