"""The replica's Explain RPC: the described request becomes the CheckRequest Envoy would
send, the check servicer decides it exactly as it decides Check (same code, index,
caches and clock), and the answer is the stage trace.

Authenticated by the sync token (compared in constant time). Nothing is counted in the
metrics or the decision log (it is not a call), no quota is consumed, and neither the
request's credential nor any token value is logged or answered.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Callable

from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from google.protobuf.message import DecodeError
from portcullis.admin.v1 import decisions_pb2
from portcullis.sync.v1 import explain_pb2

from authz_server.check_servicer import AuthorizationService, dry_run_api
from authz_server.denials import Denial
from authz_server.explain import trace as stage_trace
from authz_server.h2grpc.grpc_wire import GrpcError, StatusCode
from authz_server.pipeline.decide import Trace

log = logging.getLogger(__name__)

EXPLAIN_PATH = "/" + explain_pb2.DESCRIPTOR.services_by_name["DecisionExplainer"].full_name + "/Explain"
MAX_HEADERS = 100
MAX_TEXT = 16 * 1024


class ExplainHandler:
    def __init__(self, service: AuthorizationService, sync_token: Callable[[], str | None], replica: str) -> None:
        self._service = service
        self._sync_token = sync_token
        self._replica = replica

    def __call__(self, message: bytes) -> bytes:
        try:
            asked = explain_pb2.ExplainRequest.FromString(message)
        except DecodeError:
            raise GrpcError(StatusCode.INVALID_ARGUMENT, "the message is not a portcullis.sync.v1.ExplainRequest") from None
        expected = self._sync_token()
        if not expected or not hmac.compare_digest(asked.sync_token.encode(), expected.encode()):
            raise GrpcError(StatusCode.UNAUTHENTICATED, "explain needs this replica's sync token")
        return self.explain(asked.request).SerializeToString()

    def explain(self, request: decisions_pb2.ExplainDecisionRequest) -> decisions_pb2.DecisionTrace:
        check = check_request(request)
        trace = Trace()
        _context, decision, index = self._service.decision_for(check, trace, count=False)
        shadow = dry_run_api(decision, trace, index) if isinstance(decision, Denial) else None
        answer = stage_trace.build(decision, trace, index, replica=self._replica, dry_run=shadow is not None)
        log.info("explain: outcome=%s reason=%s api_id=%s revision=%d", answer.outcome, answer.reason,
                 answer.api.id or "-", answer.revision)
        return answer


def check_request(request: decisions_pb2.ExplainDecisionRequest) -> external_auth_pb2.CheckRequest:
    """The CheckRequest Envoy would send for this request (INVALID_ARGUMENT when it could not be one)."""
    method = request.method.strip().upper()
    if not method or len(method) > 20 or not method.isalpha():
        raise GrpcError(StatusCode.INVALID_ARGUMENT, "method must be an HTTP method such as GET")
    if not request.path.startswith("/") or len(request.path) > MAX_TEXT:
        raise GrpcError(StatusCode.INVALID_ARGUMENT, "path must start with / (at most 16 KiB, query string included)")
    if len(request.headers) > MAX_HEADERS:
        raise GrpcError(StatusCode.INVALID_ARGUMENT, f"at most {MAX_HEADERS} headers")
    if request.client_address:
        try:
            ipaddress.ip_address(request.client_address)
        except ValueError:
            raise GrpcError(StatusCode.INVALID_ARGUMENT, "client_address must be an IP address") from None
    check = external_auth_pb2.CheckRequest()
    http = check.attributes.request.http
    http.method, http.path, http.id = method, request.path, "explain"   # Envoy's path carries the query too
    for header in request.headers:
        name = header.name.strip().lower()
        if not name or len(name) > 256 or len(header.value) > MAX_TEXT or any(c in name for c in ": \r\n"):
            raise GrpcError(StatusCode.INVALID_ARGUMENT, "a header name must be a token and values at most 16 KiB")
        http.header_map.headers.append(base_pb2.HeaderValue(key=name, raw_value=header.value.encode()))
    for pseudo, value in ((":method", method), (":path", request.path)):
        http.header_map.headers.append(base_pb2.HeaderValue(key=pseudo, raw_value=value.encode()))
    check.attributes.source.address.socket_address.address = request.client_address or "127.0.0.1"
    return check
