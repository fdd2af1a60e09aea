"""Which limits apply to a call, as Quotas, in the order they are checked.

Per resource (the resource's API-kind policy), per API (the API's), per subscription
(its tier, per application and API), per application (its tier, across all its APIs),
each policy's burst limit just before its main one. Unlimited policies add nothing.
Subscription-less APIs called with an API key count the API's policies and the key's
application, when it has one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from authz_server.throttle.policy import UNLIMITED, ThrottlingPolicy
from authz_server.throttle.quota import API, APPLICATION, RESOURCE, SUBSCRIPTION, Quota

if TYPE_CHECKING:
    from authz_server.context import Identity, Route
    from authz_server.index.policy_index import PolicyIndex
    from authz_server.index.subscriptions import SubscriptionPolicy

log = logging.getLogger(__name__)

_CACHE_LIMIT = 100_000


class QuotaCache:
    """Quotas reused while their policy is the same object (a changed policy is a new
    object in the new index): a Quota's key and fingerprint cost ~1.5 µs to make."""

    def __init__(self) -> None:
        self._quotas: dict[tuple[str, bool], tuple[ThrottlingPolicy, Quota]] = {}
        self._unknown_logged: set[tuple[str, str, str]] = set()

    def quota(self, kind: str, subject: str, policy: ThrottlingPolicy, burst: bool) -> Quota:
        cached = self._quotas.get((subject, burst))
        if cached is not None and cached[0] is policy:
            return cached[1]
        if burst:
            made = Quota(kind, subject, policy.burst_request_count, policy.burst_unit, policy.name, True,
                         policy.stop_on_quota_reach)
        else:
            made = Quota(kind, subject, policy.request_count, policy.unit, policy.name, False,
                         policy.stop_on_quota_reach)
        if len(self._quotas) >= _CACHE_LIMIT:
            self._quotas.clear()
        self._quotas[(subject, burst)] = (policy, made)
        return made

    def unknown(self, organization_id: str, kind: str, name: str) -> None:
        """admin_api only accepts names of existing policies: a miss is a replica that is
        behind or a bug, logged once per name and not held against the caller."""
        key = (organization_id, kind, name)
        if key not in self._unknown_logged:
            self._unknown_logged.add(key)
            log.error("throttling policy %s %r of organization %s is not in the index: not enforced",
                      kind, name, organization_id)


def applicable_quotas(route: Route, identity: Identity | None, subscription: SubscriptionPolicy | None,
                      index: PolicyIndex, cache: QuotaCache) -> list[Quota]:
    api = route.api
    quotas: list[Quota] = []
    organization = api.organization_id
    resource_policy = getattr(route.resource, "throttling_policy", "")
    if resource_policy:
        subject = f"r|{api.id}|{route.resource.method} {route.resource.template}"
        _add(quotas, cache, index, organization, "API", resource_policy, RESOURCE, subject)
    if api.throttling_policy:
        _add(quotas, cache, index, organization, "API", api.throttling_policy, API, f"p|{api.id}")
    application_id = identity.application_id if identity is not None else None
    if subscription is not None and subscription.tier:
        _add(quotas, cache, index, organization, "SUBSCRIPTION", subscription.tier, SUBSCRIPTION,
             f"s|{subscription.application_id}|{api.id}")
    if application_id:
        application = index.applications.get(application_id)
        if application is not None and application.throttling_tier:
            _add(quotas, cache, index, application.organization_id, "APPLICATION", application.throttling_tier,
                 APPLICATION, f"a|{application_id}")
    return quotas


def _add(quotas: list[Quota], cache: QuotaCache, index: PolicyIndex, organization: str, policy_kind: str,
         name: str, kind: str, subject: str) -> None:
    if name == UNLIMITED:
        return
    policy = index.throttling_policies.named(organization, policy_kind, name)
    if policy is None:
        cache.unknown(organization, policy_kind, name)
        return
    if policy.burst_request_count > 0:
        quotas.append(cache.quota(kind, subject, policy, True))
    if policy.request_count > 0:
        quotas.append(cache.quota(kind, subject, policy, False))
