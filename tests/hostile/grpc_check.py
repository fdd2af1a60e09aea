"""The real ext_authz gRPC servicer on 127.0.0.1:0, and a Check call that returns the
reason code (or "allowed")."""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2

from authz_server.check_servicer import AuthorizationService
from authz_server.frontends import RunningServer, start_server
from authz_server.index import PolicyStore
from authz_server.key_managers.services import TokenServices
from tests.authz_server.factories import entity


@dataclass
class Served:
    store: PolicyStore
    running: RunningServer
    channel: grpc.Channel
    revision: int = 0

    def load(self, records) -> None:
        """Replaces the whole policy (a new snapshot), as a fresh Watch would."""
        self.revision += 1
        self.store.apply_snapshot([entity(r) for r in records], self.revision)

    def check(self, request: external_auth_pb2.CheckRequest) -> external_auth_pb2.CheckResponse:
        # Large enough for the 1 MiB token cases.
        return external_auth_pb2_grpc.AuthorizationStub(self.channel).Check(request, timeout=10)

    def reason(self, request: external_auth_pb2.CheckRequest) -> str:
        """"allowed", or the denial's code (body, header and gRPC status agree)."""
        response = self.check(request)
        if response.status.code == code_pb2.OK:
            return "allowed"
        code = json.loads(response.denied_response.body)["code"]
        assert response.status.message == code
        headers = {h.header.key: h.header.value for h in response.denied_response.headers}
        assert headers["x-portcullis-reason"] == code
        return code

    def close(self) -> None:
        self.channel.close()
        self.running.stop(grace=None)


def serve(*, tokens: TokenServices | None = None, trusted_hops: int = 0, clock=None) -> Served:
    store = PolicyStore()
    kwargs = {"tokens": tokens, "trusted_hops": trusted_hops}
    if clock is not None:
        kwargs["clock"] = clock
    running = start_server(store, port=0, workers=4, service=AuthorizationService(store, **kwargs))
    options = [("grpc.max_send_message_length", 8 * 1024 * 1024)]
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}", options=options)
    return Served(store, running, channel)
