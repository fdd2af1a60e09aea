"""The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) and Retry-After.

    RateLimit-Policy: "subscription";q=5;w=60, "subscription-burst";q=2;w=1
    RateLimit: "subscription";r=0;t=37, "subscription-burst";r=1;t=1

One item per limit that applies to the call, named by its kind (the policy names are
free text and stay out of headers): q is the quota, w its window in seconds, r what is
left, t the seconds until the window ends.
"""

from __future__ import annotations

from typing import Sequence

from authz_server.throttle.quota import Count

POLICY_FIELD = "ratelimit-policy"
STATE_FIELD = "ratelimit"
RETRY_AFTER = "retry-after"


def ratelimit_fields(counts: Sequence[Count], now: float) -> tuple[tuple[str, str], ...]:
    if len(counts) == 1:   # the usual case: one tier applies
        quota, remaining, window = counts[0]
        return ((POLICY_FIELD, quota.policy_item),
                (STATE_FIELD, f"{quota.state_prefix}{remaining};t={window.reset_after(now)}"))
    if not counts:
        return ()
    policy = ", ".join([c.quota.policy_item for c in counts])
    state = ", ".join([f"{c.quota.state_prefix}{c.remaining};t={c.window.reset_after(now)}" for c in counts])
    return ((POLICY_FIELD, policy), (STATE_FIELD, state))


def refusal_fields(counts: Sequence[Count], refused_by: Count, now: float) -> tuple[tuple[str, str], ...]:
    return ((RETRY_AFTER, str(refused_by.window.reset_after(now))),) + ratelimit_fields(counts, now)
