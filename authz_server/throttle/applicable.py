"""Which limits apply to a call, as Quotas, in the order they are checked.

Per resource (the resource's API-kind policy), per API (the API's), per subscription
(its tier, per application and API), per application (its tier, across all its APIs),
each policy's burst limit just before its main one. Unlimited policies add nothing.
Subscription-less APIs called with an API key count the API's policies and the key's
application, when it has one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from authz_server.throttle.policy import UNLIMITED
from authz_server.throttle.quota import API, APPLICATION, RESOURCE, SUBSCRIPTION, Quota

if TYPE_CHECKING:
    from authz_server.context import Identity, Route
    from authz_server.index.policy_index import PolicyIndex
    from authz_server.index.subscriptions import SubscriptionPolicy
    from authz_server.index.throttling_policies import ThrottlingPolicyTable

log = logging.getLogger(__name__)

_CACHE_LIMIT = 100_000
_NO_QUOTAS: tuple[Quota, ...] = ()


class QuotaCache:
    """The Quotas of each counted subject, made once and reused while the index's policy
    table is the same object (a changed policy comes in a new table).

    Looked up by a tuple of the subject's ids (interned strings, whose hashes are kept):
    building the subject's key string and hashing it anew each call, and the policy's
    lookup by (organization, kind, name), cost more than the rest of the lookup."""

    def __init__(self) -> None:
        # (kind, ids...) -> (policy table, policy name, the Quotas: burst limit first)
        self._quotas: dict[tuple[str, ...], tuple[ThrottlingPolicyTable, str, tuple[Quota, ...]]] = {}
        self._unknown_logged: set[tuple[str, str, str]] = set()

    def quotas(self, index: PolicyIndex, organization: str, policy_kind: str, name: str,
               ids: tuple[str, ...]) -> tuple[Quota, ...]:
        """The Quotas of policy `name` for the subject `ids` (its kind, then its ids)."""
        table = index.throttling_policies
        cached = self._quotas.get(ids)
        if cached is not None and cached[0] is table and cached[1] == name:
            return cached[2]
        policy = table.named(organization, policy_kind, name)
        if policy is None:
            self.unknown(organization, policy_kind, name)
            return _NO_QUOTAS
        subject = _SUBJECTS[ids[0]](*ids[1:])
        made: tuple[Quota, ...] = ()
        if policy.burst_request_count > 0:
            made += (Quota(ids[0], subject, policy.burst_request_count, policy.burst_unit, policy.name, True,
                           policy.stop_on_quota_reach),)
        if policy.request_count > 0:
            made += (Quota(ids[0], subject, policy.request_count, policy.unit, policy.name, False,
                           policy.stop_on_quota_reach),)
        if len(self._quotas) >= _CACHE_LIMIT:
            self._quotas.clear()
        self._quotas[ids] = (table, name, made)
        return made

    def unknown(self, organization_id: str, kind: str, name: str) -> None:
        """admin_api only accepts names of existing policies: a miss is a replica that is
        behind or a bug, logged once per name and not held against the caller."""
        key = (organization_id, kind, name)
        if key not in self._unknown_logged:
            self._unknown_logged.add(key)
            log.error("throttling policy %s %r of organization %s is not in the index: not enforced",
                      kind, name, organization_id)


# Who a counter counts, as its key spells it (counter keys in Redis outlive a process: keep them).
_SUBJECTS: dict[str, Callable[..., str]] = {
    RESOURCE: lambda api_id, method, template: f"r|{api_id}|{method} {template}",
    API: lambda api_id: f"p|{api_id}",
    SUBSCRIPTION: lambda application_id, api_id: f"s|{application_id}|{api_id}",
    APPLICATION: lambda application_id: f"a|{application_id}",
}


def applicable_quotas(route: Route, identity: Identity | None, subscription: SubscriptionPolicy | None,
                      index: PolicyIndex, cache: QuotaCache) -> tuple[Quota, ...]:
    api = route.api
    quotas = _NO_QUOTAS          # tuples: with one policy that applies, its cached tuple itself
    organization = api.organization_id
    resource = route.resource
    resource_policy = getattr(resource, "throttling_policy", "")
    if resource_policy and resource_policy != UNLIMITED:
        quotas += cache.quotas(index, organization, "API", resource_policy,
                               (RESOURCE, api.id, resource.method, resource.template))
    if api.throttling_policy and api.throttling_policy != UNLIMITED:
        quotas += cache.quotas(index, organization, "API", api.throttling_policy, (API, api.id))
    if subscription is not None and subscription.tier and subscription.tier != UNLIMITED:
        quotas += cache.quotas(index, organization, "SUBSCRIPTION", subscription.tier,
                               (SUBSCRIPTION, subscription.application_id, api.id))
    application_id = identity.application_id if identity is not None else None
    if application_id:
        application = index.applications.get(application_id)
        if application is not None and application.throttling_tier and application.throttling_tier != UNLIMITED:
            quotas += cache.quotas(index, application.organization_id, "APPLICATION", application.throttling_tier,
                                   (APPLICATION, application_id))
    return quotas
