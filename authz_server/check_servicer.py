"""The ext_authz servicer: protobuf in, decide(), protobuf out. `Check` always answers."""

from __future__ import annotations

import logging
import time
from typing import Callable

import grpc
from envoy.service.auth.v3 import external_auth_pb2

from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.context import Allow, RequestContext
from authz_server.throttle.limiter import Throttle
from authz_server.decision_log import log_decision
from authz_server.denials import Denial, InternalError
from authz_server.envoy_adapter import (
    EncodedAllows,
    deny_response,
    dry_run_response,
    to_check_response,
    to_request_context,
)
from authz_server.index.apis import ApiPolicy
from authz_server.index.ids import stored_id
from authz_server.index.store import PolicyStore
from authz_server.key_managers.services import TokenServices
from authz_server.metrics.recorder import OUTCOME_ALLOW, OUTCOME_DENY, OUTCOME_WOULD_DENY, recorder
from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline.decide import decide
from authz_server.pipeline.decide import Trace
from authz_server.usage.counter import usage

log = logging.getLogger(__name__)


def dry_run_api(decision: Denial, trace: Trace, index: PolicyIndex | None) -> ApiPolicy | None:
    """The API whose enforcement is DRY_RUN, when `decision` denies a call to one: that call
    is allowed (would_deny). An internal error still fails closed."""
    if isinstance(decision, InternalError):
        return None
    api = trace.api
    if api is None and decision.api_id and index is not None:
        api = index.apis.get(decision.api_id)   # a route denial: the API was found, not routed
    return api if api is not None and api.dry_run else None


def usage_application(decision: Allow | Denial, trace: Trace, index: PolicyIndex | None) -> str:
    """The application a call counts for in the usage figures: the authenticated
    credential's, or a known API key's refused before that (revoked, expired, another
    API's); "" (not counted) when the credential names none."""
    if isinstance(decision, Allow):
        return decision.application_id
    if trace.identity is not None:
        return trace.identity.application_id or ""
    if decision.api_key_id and index is not None:
        key = index.api_keys.get(stored_id(decision.api_key_id))
        return (key.application_id or "") if key is not None else ""
    return ""


class AuthorizationService:
    # Not a subclass of the generated AuthorizationServicer: grpcio needs only `Check`, and
    # a compiled (mypyc) class cannot extend an interpreted one.
    def __init__(
        self,
        store: PolicyStore,
        *,
        trusted_hops: int = 0,
        clock: Callable[[], float] = time.time,
        tokens: TokenServices | None = None,
        backend_jwt: BackendJwtIssuer | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        # Signing needs nothing but the index's keys: on by default, issuer "portcullis".
        self._backend_jwt = backend_jwt or BackendJwtIssuer()
        self._throttle = throttle    # None: no throttling (embedding, tests)
        self._trusted_hops = trusted_hops
        self._clock = clock
        self._encoded_allows = EncodedAllows()

    def Check(self, request: external_auth_pb2.CheckRequest, context: grpc.ServicerContext) -> external_auth_pb2.CheckResponse:
        return self.check(request)

    def decision_for(self, request: external_auth_pb2.CheckRequest, trace: Trace | None = None, *,
                     count: bool = True) -> tuple[RequestContext | None, Allow | Denial, PolicyIndex | None]:
        """The decision on `request` and the index it used: what Check answers, and what
        decision explain runs (the same code, on the same index, caches and clock).
        `count` False (explain): throttling counters are neither checked nor counted."""
        request_context: RequestContext | None = None
        index = self._store.current
        try:
            request_context = to_request_context(request, trusted_hops=self._trusted_hops)
            decision = decide(request_context, index, self._clock(), self._tokens, self._backend_jwt, trace,
                              self._throttle if count else None)
        except Denial as denial:  # bad_request from parsing
            decision = denial
        except Exception:
            log.exception("internal error while reading a CheckRequest")
            decision = InternalError()
        return request_context, decision, index

    def check(self, request: external_auth_pb2.CheckRequest) -> external_auth_pb2.CheckResponse:
        """Always answers; raises only offload.WouldBlock (run it again where waiting is allowed)."""
        response = self._check(request, False)
        assert not isinstance(response, bytes)
        return response

    def check_encoded(self, request: external_auth_pb2.CheckRequest) -> bytes:
        """`check`'s answer serialized (allows reused byte for byte: EncodedAllows)."""
        response = self._check(request, True)
        return response if isinstance(response, bytes) else response.SerializeToString()

    def _check(self, request: external_auth_pb2.CheckRequest,
               encoded: bool) -> external_auth_pb2.CheckResponse | bytes:
        started = time.perf_counter()
        trace = Trace()
        request_context, decision, index = self.decision_for(request, trace)
        outcome = OUTCOME_ALLOW if isinstance(decision, Allow) else OUTCOME_DENY
        try:
            shadow = dry_run_api(decision, trace, index) if not isinstance(decision, Allow) else None
            if shadow is not None and not isinstance(decision, Allow):
                outcome = OUTCOME_WOULD_DENY
                response = dry_run_response(decision, shadow, trace.identity, request_context)
            elif encoded and isinstance(decision, Allow):
                response = self._encoded_allows.encoded(decision, request_context, index)
            else:
                response = to_check_response(decision, request_context)
        except Exception:
            log.exception("internal error while building a CheckResponse")
            decision, outcome = InternalError(), OUTCOME_DENY
            response = deny_response(decision)
        elapsed = time.perf_counter() - started
        log_decision(decision, request_context, elapsed, outcome=outcome)
        recorder.decision(outcome, decision.code, decision.api_id, decision.credential, elapsed)
        usage.record(usage_application(decision, trace, index), decision.api_id, outcome, decision.code)
        return response
