"""The decision: the phase order, visible in one short function.

`decide()` answers from the request, the index, the clock and the token services (whose
caches may fetch keys or introspect a token on a miss). Every failure is an answer: a
stage's denial is returned as is, and anything unexpected becomes `internal_error` with
the traceback logged (fail closed). One exception passes through, on purpose:
`offload.WouldBlock`, raised only inside `offload.inline()` when the decision would have
to wait on the network; nothing has changed yet, and the caller runs the same decision
again where waiting is allowed.
"""

from __future__ import annotations

import logging

from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.context import Allow, Identity, RequestContext
from authz_server.credentials.identify import authenticate, challenges_for, require_credential
from authz_server.denials import Denial, InternalError, PolicyNotReady, Unauthenticated
from authz_server.index.api_keys import KeyEnvironment
from authz_server.index.apis import ApiPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.services import TokenServices
from authz_server.pipeline.backend_jwt import backend_jwt_for
from authz_server.pipeline.ip_restriction import check_ip_restriction
from authz_server.pipeline.referrer_restriction import check_referrer_restriction
from authz_server.pipeline.route import resolve_route
from authz_server.pipeline.scope import check_scope
from authz_server.pipeline.subscription import check_subscription
from authz_server.pipeline.throttle import check_throttle
from authz_server.throttle.limiter import Throttle

log = logging.getLogger(__name__)

Decision = Allow | Denial


class Trace:
    """What is known so far, so that a denial can name the API and key it concerns (and
    decision explain can tell how far the decision got)."""

    api: ApiPolicy | None = None
    api_key_id: str = ""
    credential: str = "none"   # the kind of credential found: "api_key", "oauth2" or "none" (metric label)
    identity: Identity | None = None       # once the credential is authenticated


def decide(
    request: RequestContext,
    index: PolicyIndex | None,
    now: float,
    tokens: TokenServices | None = None,
    backend_jwt: BackendJwtIssuer | None = None,
    trace: Trace | None = None,
    throttle: Throttle | None = None,
) -> Decision:
    """Allow or a Denial; raises only `offload.WouldBlock` (inside `offload.inline()`).

    `tokens` (JWKS cache, introspection) is needed for OAuth2 bearer tokens only;
    `backend_jwt` (signer and cache) for APIs that ask for a backend JWT; `trace` (decision
    explain) is filled in as the decision goes; `throttle` (counters) enforces throttling
    policies (None: nothing is throttled)."""
    trace = trace if trace is not None else Trace()
    try:
        return _decide(request, index, now, tokens, backend_jwt, throttle, trace)
    except Denial as denial:
        return _annotate(denial, trace)
    except Exception:
        log.exception("internal error while deciding %s %s", request.method, request.raw_path)
        return _annotate(InternalError(), trace)


def _decide(
    request: RequestContext,
    index: PolicyIndex | None,
    now: float,
    tokens: TokenServices | None,
    backend_jwt: BackendJwtIssuer | None,
    throttle: Throttle | None,
    trace: Trace,
) -> Allow:
    if index is None:
        raise PolicyNotReady()
    route = resolve_route(request, index)
    trace.api = route.api
    if route.resource.open:
        headers, over = check_throttle(route, None, None, index, now, throttle)
        token = backend_jwt_for(route, KeyEnvironment.PRODUCTION, None, over, index, now, backend_jwt)
        return Allow(route=route, environment=KeyEnvironment.PRODUCTION, backend_jwt=token,
                     rate_limit_headers=headers, over_quota=over)
    credential = require_credential(request, route.api)
    trace.credential = credential.label
    identity = authenticate(credential, route, index, now, tokens)
    trace.api_key_id = identity.api_key_id
    trace.identity = identity
    check_ip_restriction(request, identity)
    check_referrer_restriction(request, identity)
    subscription = check_subscription(route, identity, index)
    check_scope(route, identity)
    headers, over = check_throttle(route, identity, subscription, index, now, throttle)
    token = backend_jwt_for(route, identity.environment, identity, over, index, now, backend_jwt)
    return Allow(route=route, environment=identity.environment, identity=identity, subscription=subscription,
                 backend_jwt=token, rate_limit_headers=headers, over_quota=over)


def _annotate(denial: Denial, trace: Trace) -> Denial:
    if trace.api is not None:
        denial.api_id = trace.api.id
        if isinstance(denial, Unauthenticated) or denial.oauth_error:
            denial.challenges = challenges_for(trace.api, denial)
    denial.api_key_id = denial.api_key_id or trace.api_key_id
    denial.credential = trace.credential
    return denial
