"""admin_api's one call to an authz_server replica: decision explain (see
admin_api.services.decisions for why it is asked there and with the sync token)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc
from portcullis.admin.v1 import decisions_pb2
from portcullis.sync.v1 import explain_pb2, explain_pb2_grpc

from admin_api.errors import FailedPrecondition, InvalidArgument, Unavailable

log = logging.getLogger(__name__)

EXPLAIN_TIMEOUT_SECONDS = 5.0   # the replica's own network calls are bounded at 1 s each


class ReplicaExplainer:
    """A channel to one authz_server replica, opened on first use."""

    def __init__(self, target: str, sync_token_file: Path,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        """`credentials`: TLS with admin_api's client certificate (authz_server requires
        one when it serves TLS); None: plaintext."""
        self.target = target
        self._credentials = credentials
        self._token_file = sync_token_file
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None

    def explain(self, request: decisions_pb2.ExplainDecisionRequest) -> decisions_pb2.DecisionTrace:
        try:
            token = self._token_file.read_text(encoding="utf-8").strip()
        except OSError:
            raise FailedPrecondition("admin_api has no sync token to present to authz_server") from None
        with self._lock:
            if self._channel is None:
                self._channel = (grpc.insecure_channel(self.target) if self._credentials is None
                                 else grpc.secure_channel(self.target, self._credentials))
            stub = explain_pb2_grpc.DecisionExplainerStub(self._channel)
        try:
            return stub.Explain(explain_pb2.ExplainRequest(sync_token=token, request=request),
                                timeout=EXPLAIN_TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(error.details() or "the request cannot be explained") from None
            log.warning("explain: authz_server at %s answered %s", self.target, code.name if code else error)
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise FailedPrecondition("the authz_server replica does not accept admin_api's sync token") from None
            raise Unavailable(f"no authz_server replica answered at {self.target}") from None

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
