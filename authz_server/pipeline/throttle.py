"""Stage 6, throttling: every limit that applies to the call (resource, API, subscription,
application, and their burst limits) is checked at once; the first exceeded one that
stops on quota reach refuses with 429, and nothing is counted then."""

from __future__ import annotations

from typing import TYPE_CHECKING

from authz_server.context import Identity, Route
from authz_server.denials import (
    ApiThrottled,
    ApplicationThrottled,
    BurstThrottled,
    SubscriptionThrottled,
    Throttled,
    ThrottlingUnavailable,
)
from authz_server.index.policy_index import PolicyIndex
from authz_server.index.subscriptions import SubscriptionPolicy
from authz_server.throttle.fields import ratelimit_fields, refusal_fields
from authz_server.throttle.quota import API, APPLICATION, RESOURCE, SUBSCRIPTION, Verdict

if TYPE_CHECKING:  # the throttle's modules read the pipeline's context: no import cycle at run time
    from authz_server.throttle.limiter import Throttle

_REFUSALS: dict[str, type[Throttled]] = {
    SUBSCRIPTION: SubscriptionThrottled,
    APPLICATION: ApplicationThrottled,
    API: ApiThrottled,
    RESOURCE: ApiThrottled,
}

NOT_THROTTLED: tuple[tuple[tuple[str, str], ...], tuple[str, ...]] = ((), ())


def check_throttle(route: Route, identity: Identity | None, subscription: SubscriptionPolicy | None,
                   index: PolicyIndex, now: float, throttle: Throttle | None
                   ) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(RateLimit fields for an allowed call, the limits it is over); raises the refusal."""
    if throttle is None:
        return NOT_THROTTLED
    quotas = throttle.quotas(route, identity, subscription, index)
    if not quotas:
        return NOT_THROTTLED
    verdict = throttle.take(quotas, now)
    if verdict.refused_by is not None:
        raise _refusal(verdict, now)
    headers = ratelimit_fields(verdict.counts, now) if throttle.headers_on_allow else ()
    over = verdict.over
    return headers, (tuple(count.quota.label for count in over) if over else ())


def _refusal(verdict: Verdict, now: float) -> Throttled | ThrottlingUnavailable:
    refused = verdict.refused_by
    assert refused is not None
    if verdict.store_unavailable:
        denial: Throttled | ThrottlingUnavailable = ThrottlingUnavailable()
    elif refused.quota.burst:
        denial = BurstThrottled()
    else:
        denial = _REFUSALS[refused.quota.kind]()
    denial.headers = refusal_fields(verdict.counts, refused, now)
    return denial
