"""The Dispatcher registry and the gRPC error boundary."""

from __future__ import annotations

import logging

import grpc
import pytest

from admin_api.app import create_admin_app
from admin_api.access.caller import Caller, Role
from admin_api.dispatch import HANDLERS, Dispatcher, admin_methods
from admin_api.errors import InvalidArgument, NotFound, PermissionDenied
from admin_api.transports.grpc.server import AdminGrpcServer
from portcullis.admin.v1 import admin_pb2, admin_pb2_grpc
from portcullis_shared.settings import MeshSettings
from tests.admin_api.conftest import ADMIN


def test_registry_covers_every_rpc_of_the_protos():
    assert set(HANDLERS) == set(admin_methods())
    assert "portcullis.admin.v1.ApiService/CreateApi" in HANDLERS


def test_incomplete_registry_is_a_startup_error(store):
    partial = dict(HANDLERS)
    partial.pop("portcullis.admin.v1.ApiService/GetApi")
    with pytest.raises(RuntimeError, match="GetApi"):
        Dispatcher(store, partial)


@pytest.mark.parametrize(("method", "request_message", "caller", "error"), [
    pytest.param("portcullis.admin.v1.ApiService/Nope", admin_pb2.GetApiRequest(), ADMIN, NotFound, id="unknown"),
    pytest.param("portcullis.admin.v1.ApiService/GetApi", admin_pb2.ListApisRequest(), ADMIN, InvalidArgument,
                 id="wrong-request-type"),
    pytest.param("portcullis.admin.v1.ApiService/ListApis", admin_pb2.ListApisRequest(),
                 Caller("authz", "default", Role.SYNC), PermissionDenied, id="sync-role"),
])
def test_call_errors(store, method, request_message, caller, error):
    with pytest.raises(error):
        Dispatcher(store).call(method, request_message, caller)


def test_bootstrap_runs_once(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    settings = MeshSettings(data_dir=tmp_path)
    first = create_admin_app(settings, grpc_port=0)
    token = settings.admin_token_file.read_text().strip()
    said = capsys.readouterr().err
    # Not a terminal (a log): the file is named, the token itself is not printed.
    assert str(settings.admin_token_file) in said and token not in said
    caller = first.dispatcher.authenticate(token)
    assert caller == Caller("bootstrap-admin", "default", Role.ADMIN)
    first.stop()
    second = create_admin_app(settings, grpc_port=0)
    assert settings.admin_token_file.read_text().strip() == token
    assert token not in capsys.readouterr().err
    assert second.dispatcher.authenticate(token) == caller
    second.stop()


def test_unexpected_exception_is_internal_and_logged(store, caplog):
    def broken(_store, _request, _caller):
        raise RuntimeError("boom with details")

    handlers = {**HANDLERS, "portcullis.admin.v1.ApiService/ListApis": broken}
    dispatcher = Dispatcher(store, handlers)
    dispatcher.authenticate = lambda token: ADMIN  # type: ignore[method-assign]
    server = AdminGrpcServer(dispatcher, "127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel, caplog.at_level(logging.ERROR):
            with pytest.raises(grpc.RpcError) as caught:
                admin_pb2_grpc.ApiServiceStub(channel).ListApis(admin_pb2.ListApisRequest())
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert caught.value.details() == "internal error"
        assert "boom with details" in caplog.text
    finally:
        server.stop()
