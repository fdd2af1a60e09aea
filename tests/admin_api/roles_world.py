"""A deployment with users of every role, for the permission tests on gRPC and REST.

One migrated SQLite file, the resident key manager's routes and the admin REST app on a
TestClient, and the admin gRPC server on port 0, all over one Dispatcher. Users get
their tokens by the password grant of a first-party resident client with the admin API's
scope (JWT and reference formats).
`call(transport, method, request, token)` makes the same call over either transport and
answers an `Outcome` (status name and JSON-ish body) so that tests compare both alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.testclient import TestClient

from admin_api import bootstrap
from admin_api.app import open_store
from admin_api.access.caller import Caller, Role
from admin_api.crypto.kek import Kek
from admin_api.dispatch import Dispatcher
from admin_api.transports.grpc.server import AdminGrpcServer
from admin_api.transports.oauth2.resident import ResidentKeyManager
from admin_api.transports.oauth2.routes import oauth_routes
from admin_api.transports.rest import create_app
from admin_api.transports.rest.bindings import HttpBinding, load_bindings
from admin_api.schema import ADMIN_PROTO_MODULES
from admin_api.services import api_keys, apis, application_keys, applications, subscriptions, users
from admin_api.config import ServiceConfig
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, users_pb2
from portcullis_shared.scopes import ADMIN_SCOPE

ISSUER = "http://127.0.0.1:8081"
PASSWORD = "correct-horse-battery"
ROOT = Caller("bootstrap-admin", "default", Role.ADMIN)
# One user per role, and a second subscriber whose resources are "someone else's".
USERS = {"admin": "ada", "publisher": "pat", "creator": "cris", "subscriber": "sam"}
OTHER = "sue"
HTTP_STATUS = {200: "OK", 201: "OK", 204: "OK", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
               403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "FAILED_PRECONDITION"}


@dataclass
class Outcome:
    status: str        # a grpc.StatusCode name; "OK" on success
    body: Any = None   # the answer as JSON (proto field names), or the error message


@dataclass
class World:
    store: Store
    dispatcher: Dispatcher
    resident: ResidentKeyManager
    http: TestClient
    channel: grpc.Channel
    admin_token: str
    client_id: str = ""
    client_secret: str = ""
    reference_client: tuple[str, str] = ("", "")
    tokens: dict[str, str] = field(default_factory=dict)     # username → JWT
    secrets_seen: list[str] = field(default_factory=list)    # every token, secret and key value handed out
    bindings: dict[str, HttpBinding] = field(default_factory=dict)
    counter: int = 0

    # ------------------------------------------------------------------ tokens

    def password_token(self, username: str, *, reference: bool = False, password: str = PASSWORD) -> str:
        client = self.reference_client if reference else (self.client_id, self.client_secret)
        response = self.http.post("/oauth2/token", data={"grant_type": "password", "username": username,
                                                         "password": password, "scope": ADMIN_SCOPE}, auth=client)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        self.secrets_seen.append(token)
        return token

    def token_of(self, role: str) -> str:
        username = USERS.get(role, role)
        if username not in self.tokens:
            self.tokens[username] = self.password_token(username)
        return self.tokens[username]

    # ------------------------------------------------------------------ calls

    def call(self, transport: str, method: str, request: Message, token: str) -> Outcome:
        full_name = method if "/" in method and "." in method else f"portcullis.admin.v1.{method}"
        if transport == "grpc":
            return self._grpc(full_name, request, token)
        return self._rest(full_name, request, token)

    def _grpc(self, full_name: str, request: Message, token: str) -> Outcome:
        service, name = full_name.split("/")
        binding = self.bindings[full_name]
        stub = self.channel.unary_unary(f"/{service}/{name}", request_serializer=type(request).SerializeToString,
                                        response_deserializer=binding.response_class.FromString)
        try:
            answer = stub(request, metadata=[("authorization", f"Bearer {token}")], timeout=30)
        except grpc.RpcError as error:
            return Outcome(error.code().name, error.details())
        return Outcome("OK", json_format.MessageToDict(answer, preserving_proto_field_name=True))

    def _rest(self, full_name: str, request: Message, token: str) -> Outcome:
        binding = self.bindings[full_name]
        values = json_format.MessageToDict(request, preserving_proto_field_name=True)
        path = binding.path.template
        for _, name in binding.path.variables:
            path = path.replace("{" + name + "}", quote(str(values.pop(name, "")), safe=""))
        body: Any = None
        params: dict[str, Any] = {}
        if binding.body == "*":
            body = values
        elif binding.body:
            body = values.pop(binding.body, {})
            mask = values.pop("update_mask", None)
            if mask:
                params["update_mask"] = mask
        else:
            params = values
        response = self.http.request(binding.http_method, path, params=params or None,
                                     content=json.dumps(body) if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}",
                                              **({"Content-Type": "application/json"} if body is not None else {})})
        status = HTTP_STATUS.get(response.status_code, str(response.status_code))
        payload = response.json() if response.content else {}
        if status != "OK":
            return Outcome(status, payload.get("detail", payload))
        return Outcome(status, payload)

    # ------------------------------------------------------------------ fixtures made directly

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def api(self, *, published: bool = True) -> admin_pb2.Api:
        name = self.unique("Api")
        api = apis.create_api(self.store, admin_pb2.CreateApiRequest(
            name=name, version="1.0.0", context=f"/{name.lower()}", production_endpoint="http://127.0.0.1:8091",
            sandbox_endpoint="http://127.0.0.1:8092"), ROOT)
        if published:
            api = apis.change_api_lifecycle(self.store, admin_pb2.ChangeApiLifecycleRequest(
                id=api.id, target_state=admin_pb2.Api.PUBLISHED), ROOT)
        return api

    def application(self, owner: str) -> admin_pb2.Application:
        return applications.create_application(self.store, admin_pb2.CreateApplicationRequest(
            name=self.unique("App"), owner=owner), ROOT)

    def subscription(self, owner: str) -> admin_pb2.Subscription:
        return subscriptions.create_subscription(self.store, admin_pb2.CreateSubscriptionRequest(
            application_id=self.application(owner).id, api_id=self.api().id), ROOT)

    def api_key(self, owner: str, application_id: str = "") -> admin_pb2.ApiKey:
        answer = api_keys.generate_api_key(self.store, admin_pb2.GenerateApiKeyRequest(
            api_id=self.api().id, name="web", application_id=application_id),
            Caller(owner, "default", Role.SUBSCRIBER))
        self.secrets_seen.append(answer.value)
        return answer.api_key

    def application_key(self, owner: str) -> application_keys_pb2.ApplicationKey:
        request = application_keys_pb2.GenerateApplicationKeyRequest(application_id=self.application(owner).id)
        answer = application_keys.generate_application_key(self.store, request, ROOT)
        self.secrets_seen.append(answer.consumer_secret)
        return answer.key

    def user(self, roles: list[str]) -> users_pb2.User:
        return users.create_user(self.store, users_pb2.CreateUserRequest(user=users_pb2.User(
            username=self.unique("user"), password=PASSWORD, roles=roles)), ROOT)


def build_world(tmp: Path) -> tuple[World, AdminGrpcServer]:
    config = ServiceConfig(public_url=ISSUER, kek=Kek.generate())
    store = open_store(f"sqlite:///{tmp / 'portcullis.db'}", config)
    created = bootstrap.ensure_credentials(store, tmp / "admin-token", tmp / "sync-token")
    assert created.admin_token is not None
    resident = ResidentKeyManager.create(store)
    dispatcher = Dispatcher(store)
    server = AdminGrpcServer(dispatcher, "127.0.0.1:0")
    server.start()
    http = TestClient(create_app(dispatcher, extra_routes=oauth_routes(resident)), raise_server_exceptions=False)
    world = World(store=store, dispatcher=dispatcher, resident=resident, http=http,
                  channel=grpc.insecure_channel(f"127.0.0.1:{server.port}"), admin_token=created.admin_token,
                  bindings={b.full_name: b for b in load_bindings(*ADMIN_PROTO_MODULES)})
    world.secrets_seen += [created.admin_token, PASSWORD]
    for role, username in {**USERS, "other": OTHER}.items():
        role_name = "subscriber" if role == "other" else role
        users.create_user(store, users_pb2.CreateUserRequest(user=users_pb2.User(
            username=username, password=PASSWORD, roles=[role_name, "reader"])), ROOT)
    world.client_id, world.client_secret = _client(world, application_keys_pb2.OAuthClientSettings.JWT)
    world.reference_client = _client(world, application_keys_pb2.OAuthClientSettings.REFERENCE)
    return world, server


def _client(world: World, token_type: int) -> tuple[str, str]:
    application = applications.create_application(world.store, admin_pb2.CreateApplicationRequest(
        name=world.unique("Console")), ROOT)
    answer = application_keys.generate_application_key(world.store, application_keys_pb2.GenerateApplicationKeyRequest(
        application_id=application.id, settings=application_keys_pb2.OAuthClientSettings(
            grant_types=["password", "client_credentials"], token_type=token_type, first_party=True)), ROOT)
    world.secrets_seen.append(answer.consumer_secret)
    return answer.key.consumer_key, answer.consumer_secret


def stop_world(world: World, server: AdminGrpcServer) -> None:
    world.channel.close()
    world.http.close()
    server.stop(grace=0)
    world.store.db.dispose()

