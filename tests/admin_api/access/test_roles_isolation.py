"""Organizations are isolated for every entity kind, on gRPC and REST: an admin of
organization "acme" (a user with a token from acme's resident key manager) cannot see,
change or delete anything of the default organization, nor act in it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from admin_api.access.caller import Caller, Role
from admin_api.services import application_keys, applications, key_managers, organizations, users
from portcullis.admin.v1 import (admin_pb2, application_keys_pb2, audit_pb2, key_managers_pb2, signing_keys_pb2,
                                 users_pb2)
from portcullis_shared.scopes import ADMIN_SCOPE
from tests.admin_api.roles_world import PASSWORD, ROOT, World, build_world, stop_world

TRANSPORTS = ("grpc", "rest")
ACME_ROOT = Caller("acme-root", "acme", Role.ADMIN)


@dataclass
class Acme:
    world: World
    token: str          # a JWT of acme's admin user
    ids: dict[str, str]  # default-organization entities by kind


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acme]:
    world, server = build_world(tmp_path_factory.mktemp("isolation"))
    try:
        organizations.create_organization(world.store, admin_pb2.CreateOrganizationRequest(id="acme"), ROOT)
        users.create_user(world.store, users_pb2.CreateUserRequest(user=users_pb2.User(
            username="wile", password=PASSWORD, roles=["admin"])), ACME_ROOT)
        console = applications.create_application(world.store, admin_pb2.CreateApplicationRequest(name="Console"),
                                                  ACME_ROOT)
        client = application_keys.generate_application_key(
            world.store, application_keys_pb2.GenerateApplicationKeyRequest(
                application_id=console.id, settings=application_keys_pb2.OAuthClientSettings(
                    grant_types=["password"], first_party=True)), ACME_ROOT)
        response = world.http.post("/oauth2/token", data={"grant_type": "password", "username": "wile",
                                                         "password": PASSWORD, "scope": ADMIN_SCOPE},
                                   auth=(client.key.consumer_key, client.consumer_secret))
        assert response.status_code == 200, response.text
        key = world.application_key("sam")
        resident = key_managers.list_key_managers(world.store, key_managers_pb2.ListKeyManagersRequest(), ROOT)
        ids = {
            "api": world.api().id,
            "application": world.application("sam").id,
            "subscription": world.subscription("sam").id,
            "api_key": world.api_key("sam").id,
            "application_key": key.id,
            "key_manager": resident.key_managers[0].id,
            "user": world.user(["subscriber"]).id,
            "scope": users.create_scope(world.store, users_pb2.CreateScopeRequest(
                scope=users_pb2.Scope(name="acme:probe")), ROOT).id,
        }
        yield Acme(world, response.json()["access_token"], ids)
    finally:
        stop_world(world, server)


def test_the_acme_token_acts_in_acme(acme: Acme) -> None:
    assert acme.world.dispatcher.authenticate(acme.token) == Caller("wile", "acme", Role.ADMIN)


Reach = Callable[[str], Message]

# (kind, get, update, delete) for every entity kind of an organization.
REACH: dict[str, tuple[Reach, Reach, Reach]] = {
    "api": (lambda i: admin_pb2.GetApiRequest(id=i),
            lambda i: admin_pb2.UpdateApiRequest(id=i, api=admin_pb2.Api(description="x"),
                                                 update_mask=FieldMask(paths=["description"])),
            lambda i: admin_pb2.DeleteApiRequest(id=i)),
    "application": (lambda i: admin_pb2.GetApplicationRequest(id=i),
                    lambda i: admin_pb2.UpdateApplicationRequest(
                        id=i, application=admin_pb2.Application(description="x"),
                        update_mask=FieldMask(paths=["description"])),
                    lambda i: admin_pb2.DeleteApplicationRequest(id=i)),
    "subscription": (lambda i: admin_pb2.GetSubscriptionRequest(id=i),
                     lambda i: admin_pb2.UpdateSubscriptionRequest(
                         id=i, subscription=admin_pb2.Subscription(status=admin_pb2.Subscription.BLOCKED),
                         update_mask=FieldMask(paths=["status"])),
                     lambda i: admin_pb2.DeleteSubscriptionRequest(id=i)),
    "api_key": (lambda i: admin_pb2.GetApiKeyRequest(id=i),
                lambda i: admin_pb2.RevokeApiKeyRequest(id=i),
                lambda i: admin_pb2.RegenerateApiKeyRequest(id=i)),
    "application_key": (lambda i: application_keys_pb2.GetApplicationKeyRequest(id=i),
                        lambda i: application_keys_pb2.RegenerateConsumerSecretRequest(application_key_id=i),
                        lambda i: application_keys_pb2.DeleteApplicationKeyRequest(id=i)),
    "key_manager": (lambda i: key_managers_pb2.GetKeyManagerRequest(id=i),
                    lambda i: key_managers_pb2.UpdateKeyManagerRequest(
                        id=i, key_manager=key_managers_pb2.KeyManager(enabled=False),
                        update_mask=FieldMask(paths=["enabled"])),
                    lambda i: key_managers_pb2.DeleteKeyManagerRequest(id=i)),
    "user": (lambda i: users_pb2.GetUserRequest(id=i),
             lambda i: users_pb2.UpdateUserRequest(id=i, user=users_pb2.User(roles=["admin"]),
                                                   update_mask=FieldMask(paths=["roles"])),
             lambda i: users_pb2.DeleteUserRequest(id=i)),
    "scope": (lambda i: users_pb2.UpdateScopeRequest(id=i, scope=users_pb2.Scope(roles=["admin"]),
                                                     update_mask=FieldMask(paths=["roles"])),
              lambda i: users_pb2.UpdateScopeRequest(id=i, scope=users_pb2.Scope(description="x"),
                                                     update_mask=FieldMask(paths=["description"])),
              lambda i: users_pb2.DeleteScopeRequest(id=i)),
}

METHODS = {
    admin_pb2.GetApiRequest: "ApiService/GetApi", admin_pb2.UpdateApiRequest: "ApiService/UpdateApi",
    admin_pb2.DeleteApiRequest: "ApiService/DeleteApi",
    admin_pb2.GetApplicationRequest: "ApplicationService/GetApplication",
    admin_pb2.UpdateApplicationRequest: "ApplicationService/UpdateApplication",
    admin_pb2.DeleteApplicationRequest: "ApplicationService/DeleteApplication",
    admin_pb2.GetSubscriptionRequest: "SubscriptionService/GetSubscription",
    admin_pb2.UpdateSubscriptionRequest: "SubscriptionService/UpdateSubscription",
    admin_pb2.DeleteSubscriptionRequest: "SubscriptionService/DeleteSubscription",
    admin_pb2.GetApiKeyRequest: "ApiKeyService/GetApiKey", admin_pb2.RevokeApiKeyRequest: "ApiKeyService/RevokeApiKey",
    admin_pb2.RegenerateApiKeyRequest: "ApiKeyService/RegenerateApiKey",
    application_keys_pb2.GetApplicationKeyRequest: "ApplicationKeyService/GetApplicationKey",
    application_keys_pb2.RegenerateConsumerSecretRequest: "ApplicationKeyService/RegenerateConsumerSecret",
    application_keys_pb2.DeleteApplicationKeyRequest: "ApplicationKeyService/DeleteApplicationKey",
    key_managers_pb2.GetKeyManagerRequest: "KeyManagerService/GetKeyManager",
    key_managers_pb2.UpdateKeyManagerRequest: "KeyManagerService/UpdateKeyManager",
    key_managers_pb2.DeleteKeyManagerRequest: "KeyManagerService/DeleteKeyManager",
    users_pb2.GetUserRequest: "UserService/GetUser", users_pb2.UpdateUserRequest: "UserService/UpdateUser",
    users_pb2.DeleteUserRequest: "UserService/DeleteUser",
    users_pb2.UpdateScopeRequest: "UserService/UpdateScope", users_pb2.DeleteScopeRequest: "UserService/DeleteScope",
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("action", ["get", "update", "delete"])
@pytest.mark.parametrize("kind", list(REACH))
def test_another_organizations_entity_is_not_found(acme: Acme, kind: str, action: str, transport: str) -> None:
    request = REACH[kind][("get", "update", "delete").index(action)](acme.ids[kind])
    outcome = acme.world.call(transport, METHODS[type(request)], request, acme.token)
    assert outcome.status == "NOT_FOUND", outcome.body
    assert acme.ids[kind] in outcome.body   # the id asked for, and nothing about its owner


LISTS: dict[str, tuple[str, Message, str]] = {
    "api": ("ApiService/ListApis", admin_pb2.ListApisRequest(), "apis"),
    "application": ("ApplicationService/ListApplications", admin_pb2.ListApplicationsRequest(), "applications"),
    "subscription": ("SubscriptionService/ListSubscriptions", admin_pb2.ListSubscriptionsRequest(),
                     "subscriptions"),
    "api_key": ("ApiKeyService/ListApiKeys", admin_pb2.ListApiKeysRequest(), "api_keys"),
    "key_manager": ("KeyManagerService/ListKeyManagers", key_managers_pb2.ListKeyManagersRequest(), "key_managers"),
    "user": ("UserService/ListUsers", users_pb2.ListUsersRequest(), "users"),
    "scope": ("UserService/ListScopes", users_pb2.ListScopesRequest(), "scopes"),
    "organization": ("OrganizationService/ListOrganizations", admin_pb2.ListOrganizationsRequest(), "organizations"),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", list(LISTS))
def test_lists_show_only_the_callers_organization(acme: Acme, kind: str, transport: str) -> None:
    method, request, field = LISTS[kind]
    outcome = acme.world.call(transport, method, request, acme.token)
    assert outcome.status == "OK", outcome.body
    rows = outcome.body.get(field, [])
    if kind == "organization":
        assert [r["id"] for r in rows] == ["acme"]
    else:
        assert all(r["organization_id"] == "acme" for r in rows), rows
        assert acme.ids.get(kind) not in {r["id"] for r in rows}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("method", "request_message"), [
    ("ApiService/CreateApi", admin_pb2.CreateApiRequest(name="Sneaky", version="1", context="/sneaky",
                                                        production_endpoint="http://127.0.0.1:8091",
                                                        organization_id="default")),
    ("ApplicationService/CreateApplication", admin_pb2.CreateApplicationRequest(name="Sneaky",
                                                                               organization_id="default")),
    ("ApiKeyService/ListApiKeys", admin_pb2.ListApiKeysRequest(organization_id="default")),
    ("KeyManagerService/ListKeyManagers", key_managers_pb2.ListKeyManagersRequest(organization_id="default")),
    ("UserService/CreateUser", users_pb2.CreateUserRequest(user=users_pb2.User(
        username="sneaky", password=PASSWORD, organization_id="default"))),
    ("OrganizationService/CreateOrganization", admin_pb2.CreateOrganizationRequest(id="sneaky")),
    ("OrganizationService/CreateOrganizationAdminCredential",
     admin_pb2.CreateOrganizationAdminCredentialRequest(id="acme", rotate=True)),
    ("SigningKeyService/ListSigningKeys", signing_keys_pb2.ListSigningKeysRequest()),
    ("SigningKeyService/RotateSigningKey", signing_keys_pb2.RotateSigningKeyRequest()),
], ids=lambda v: v if isinstance(v, str) else "")
def test_acting_in_another_organization_is_denied(acme: Acme, method: str, request_message: Message,
                                                   transport: str) -> None:
    assert acme.world.call(transport, method, request_message, acme.token).status == "PERMISSION_DENIED"


def test_cross_organization_references_are_not_found(acme: Acme) -> None:
    """acme's own application cannot subscribe to, or get a key for, a default-organization API."""
    world = acme.world
    own = world.call("grpc", "ApplicationService/CreateApplication",
                     admin_pb2.CreateApplicationRequest(name="Mine"), acme.token)
    assert own.status == "OK"
    for transport in ("grpc", "rest"):
        subscribed = world.call(transport, "SubscriptionService/CreateSubscription",
                                admin_pb2.CreateSubscriptionRequest(application_id=own.body["id"],
                                                                    api_id=acme.ids["api"]), acme.token)
        assert subscribed.status == "NOT_FOUND"
        key = world.call(transport, "ApiKeyService/GenerateApiKey", admin_pb2.GenerateApiKeyRequest(
            api_id=acme.ids["api"], name="web"), acme.token)
        assert key.status == "NOT_FOUND"
        keyed = world.call(transport, "ApplicationKeyService/GenerateApplicationKey",
                           application_keys_pb2.GenerateApplicationKeyRequest(
                               application_id=own.body["id"], key_manager_id=acme.ids["key_manager"]), acme.token)
        assert keyed.status == "NOT_FOUND"


def test_the_default_organization_cannot_reach_acme_either(acme: Acme) -> None:
    world = acme.world
    theirs = world.call("grpc", "ApplicationService/CreateApplication",
                        admin_pb2.CreateApplicationRequest(name="Theirs"), acme.token)
    for transport in TRANSPORTS:
        outcome = world.call(transport, "ApplicationService/GetApplication",
                             admin_pb2.GetApplicationRequest(id=theirs.body["id"]), world.token_of("admin"))
        assert outcome.status == "NOT_FOUND"
    records = world.call("rest", "AuditService/ListAuditRecords", audit_pb2.ListAuditRecordsRequest(page_size=500),
                         acme.token)
    assert records.status == "OK"
    assert {r["organization_id"] for r in records.body["records"]} == {"acme"}
    assert {r["subject"] for r in records.body["records"]} == {"wile"}
