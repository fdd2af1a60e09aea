"""Admin callers authenticated by the resident key manager's tokens: the caller a token
makes, roles read at call time, and every token that must not work (revoked, expired,
deleted user, wrong issuer, forged) answered UNAUTHENTICATED on gRPC and REST alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from admin_api.access.caller import Caller, Credential, Role
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import Unauthenticated
from admin_api.oauth import tokens
from admin_api.services import application_keys, key_managers, users
from portcullis.admin.v1 import admin_pb2, application_keys_pb2, key_managers_pb2, users_pb2
from portcullis_shared.scopes import ADMIN_SCOPE
from tests.admin_api.roles_world import ISSUER, PASSWORD, ROOT, USERS, World, build_world, stop_world

TRANSPORTS = ("grpc", "rest")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world, server = build_world(tmp_path_factory.mktemp("tokens"))
    try:
        yield world
    finally:
        stop_world(world, server)


def _create_api(world: World) -> admin_pb2.CreateApiRequest:
    name = world.unique("T")
    return admin_pb2.CreateApiRequest(name=name, version="1.0.0", context=f"/{name.lower()}",
                                      production_endpoint="http://127.0.0.1:8091")


@pytest.mark.parametrize("reference", [False, True], ids=["jwt", "reference"])
@pytest.mark.parametrize("role", ["admin", "publisher", "creator", "subscriber"])
def test_a_password_grant_token_makes_the_user_the_caller(world: World, role: str, reference: bool) -> None:
    token = world.password_token(USERS[role], reference=reference)
    caller = world.dispatcher.authenticate(token)
    assert caller == Caller(USERS[role], "default", roles=frozenset({Role(role)}))
    assert caller.role is Role(role)
    assert caller.credential is (Credential.REFERENCE_TOKEN if reference else Credential.JWT)


def test_roles_that_are_not_admin_roles_give_no_permission(world: World) -> None:
    user = world.user(["reader", "menu:writer"])
    caller = world.dispatcher.authenticate(world.password_token(user.username))
    assert caller.roles == frozenset() and caller.role is None
    for transport in TRANSPORTS:
        assert world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(),
                          world.password_token(user.username)).status == "PERMISSION_DENIED"


def test_the_bootstrap_admin_token_still_works(world: World) -> None:
    caller = world.dispatcher.authenticate(world.admin_token)
    assert caller == Caller("bootstrap-admin", "default", Role.ADMIN)
    assert caller.credential is Credential.ADMIN_TOKEN


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_role_change_applies_at_once(world: World, transport: str) -> None:
    user = world.user(["subscriber"])
    token = world.password_token(user.username)
    assert world.call(transport, "ApiService/CreateApi", _create_api(world), token).status == "PERMISSION_DENIED"

    def set_roles(roles: list[str]) -> None:
        users.update_user(world.store, users_pb2.UpdateUserRequest(
            id=user.id, user=users_pb2.User(roles=roles), update_mask=FieldMask(paths=["roles"])), ROOT)

    set_roles(["creator"])
    assert world.call(transport, "ApiService/CreateApi", _create_api(world), token).status == "OK"
    set_roles([])
    assert world.call(transport, "ApiService/CreateApi", _create_api(world), token).status == "PERMISSION_DENIED"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("reference", [False, True], ids=["jwt", "reference"])
def test_a_revoked_token_is_unauthenticated(world: World, transport: str, reference: bool) -> None:
    token = world.password_token(USERS["admin"], reference=reference)
    assert world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), token).status == "OK"
    client = world.reference_client if reference else (world.client_id, world.client_secret)
    revoked = world.http.post("/oauth2/revoke", data={"token": token}, auth=client)
    assert revoked.status_code == 200, revoked.text
    outcome = world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), token)
    assert outcome.status == "UNAUTHENTICATED", outcome.body


def _mint(world: World, *, reference: bool, issued: timedelta = timedelta(0), issuer: str = ISSUER,
          username: str = "ada", grant_type: str = "password") -> str:
    """A token recorded like the token endpoint records it, issued `issued` ago."""
    client_id = world.reference_client[0] if reference else world.client_id
    client = application_keys.find_oauth_client(world.store, client_id)
    assert client is not None
    with world.store.read() as session:
        user = session.scalars(select(models.User).where(models.User.organization_id == "default",
                                                         models.User.username == username)).one()
    spec = tokens.TokenSpec(organization_id="default", key_manager_id=client.key_manager_id,
                            application_key_id=client.application_key_id, consumer_key=client.consumer_key,
                            grant_type=grant_type, subject=user.id, username=username, scope=ADMIN_SCOPE,
                            reference=reference, access_validity=3600, refresh_validity=None)
    with world.store.write() as writer:
        answer = tokens.issue(writer, world.resident.keys, issuer, spec, utcnow() - issued)
    return str(answer["access_token"])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("reference", [False, True], ids=["jwt", "reference"])
def test_an_expired_token_is_unauthenticated(world: World, transport: str, reference: bool) -> None:
    fresh = _mint(world, reference=reference)
    assert world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), fresh).status == "OK"
    expired = _mint(world, reference=reference, issued=timedelta(hours=2))
    outcome = world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), expired)
    assert outcome.status == "UNAUTHENTICATED" and "expired" in outcome.body


def test_a_jwt_of_another_issuer_is_unauthenticated(world: World) -> None:
    token = _mint(world, reference=False, issuer="http://evil.example")
    with pytest.raises(Unauthenticated):
        world.dispatcher.authenticate(token)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_deleted_users_token_is_unauthenticated(world: World, transport: str) -> None:
    user = world.user(["admin"])
    token = world.password_token(user.username)
    assert world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), token).status == "OK"
    users.delete_user(world.store, users_pb2.DeleteUserRequest(id=user.id), ROOT)
    assert world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), token).status == \
        "UNAUTHENTICATED"


def _forged(world: World, **header: object) -> str:
    """A JWT with the claims of a real one, signed by a key that is not the resident's."""
    real = world.password_token(USERS["admin"])
    claims = jwt.decode(real, options={"verify_signature": False})
    kid = jwt.get_unverified_header(real)["kid"]
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                      headers={"typ": "at+jwt", "kid": kid, **header})


@pytest.mark.parametrize("make", [
    pytest.param(lambda w: _forged(w), id="signed-by-another-key"),
    pytest.param(lambda w: ".".join(w.password_token(USERS["admin"]).split(".")[:2]) + ".", id="signature-stripped"),
    pytest.param(lambda w: jwt.encode(jwt.decode(w.password_token(USERS["admin"]),
                                                 options={"verify_signature": False}), None, algorithm="none"),
                 id="alg-none"),
    pytest.param(lambda w: "pct_" + "A" * 43, id="unknown-reference-token"),
    pytest.param(lambda w: "a.b.c", id="garbage-jwt"),
])
def test_forged_or_unknown_tokens_are_unauthenticated(world: World, make) -> None:  # type: ignore[no-untyped-def]
    token = make(world)
    for transport in TRANSPORTS:
        outcome = world.call(transport, "ApiService/ListApis", admin_pb2.ListApisRequest(), token)
        assert outcome.status == "UNAUTHENTICATED", (transport, outcome.body)


def test_a_client_credentials_token_acts_as_the_application_owner(world: World) -> None:
    application = world.application(USERS["subscriber"])
    answer = application_keys.generate_application_key(world.store, application_keys_pb2.GenerateApplicationKeyRequest(
        application_id=application.id, settings=application_keys_pb2.OAuthClientSettings(first_party=True)), ROOT)
    response = world.http.post("/oauth2/token", data={"grant_type": "client_credentials", "scope": ADMIN_SCOPE},
                               auth=(answer.key.consumer_key, answer.consumer_secret))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    caller = world.dispatcher.authenticate(token)
    assert caller == Caller(USERS["subscriber"], "default", roles=frozenset({Role.SUBSCRIBER}))
    listed = world.call("rest", "ApplicationService/ListApplications", admin_pb2.ListApplicationsRequest(), token)
    assert listed.status == "OK"
    assert {a["owner"] for a in listed.body["applications"]} == {USERS["subscriber"]}


def test_a_disabled_resident_key_manager_makes_its_tokens_unauthenticated(world: World) -> None:
    token = world.password_token(USERS["admin"])
    resident = key_managers.list_key_managers(world.store, key_managers_pb2.ListKeyManagersRequest(), ROOT)
    km = next(k for k in resident.key_managers if k.type == key_managers_pb2.KeyManager.RESIDENT)

    def enable(value: bool) -> None:
        key_managers.update_key_manager(world.store, key_managers_pb2.UpdateKeyManagerRequest(
            id=km.id, key_manager=key_managers_pb2.KeyManager(enabled=value),
            update_mask=FieldMask(paths=["enabled"])), ROOT)

    enable(False)
    try:
        with pytest.raises(Unauthenticated, match="disabled"):
            world.dispatcher.authenticate(token)
    finally:
        enable(True)
    assert world.dispatcher.authenticate(token).subject == USERS["admin"]


def test_the_password_is_checked(world: World) -> None:
    response = world.http.post("/oauth2/token", data={"grant_type": "password", "username": USERS["admin"],
                                                     "password": PASSWORD + "x"},
                               auth=(world.client_id, world.client_secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
