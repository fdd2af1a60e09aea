"""Who may change what: (role, RPC, own or someone else's resource) → OK, PERMISSION_DENIED
or NOT_FOUND, over gRPC (a real server on port 0) and REST (TestClient) alike, with
callers authenticated by resident key manager JWTs of users holding each role.

"own" is a resource of the calling user (owner == username); "other" belongs to another
subscriber. Admins act on anything in their organization; publishers and creators have
no part in applications or keys; subscribers see someone else's resource as NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from admin_api.access.caller import Caller, Role
from admin_api.errors import PermissionDenied
from admin_api.access.permissions import PERMISSIONS
from portcullis.admin.v1 import (admin_pb2, application_keys_pb2, audit_pb2, gateways_pb2, key_managers_pb2,
                                 labels_pb2, signing_keys_pb2, throttling_pb2, users_pb2)
from admin_api.services import api_definitions, apis, key_managers, organizations, throttling_policies, users
from tests.admin_api.roles_world import OTHER, ROOT, USERS, World, build_world, stop_world

OK, DENIED, NOT_FOUND = "OK", "PERMISSION_DENIED", "NOT_FOUND"
ROLES = ("admin", "publisher", "creator", "subscriber")
TRANSPORTS = ("grpc", "rest")

Prep = Callable[[World, str], Message]   # (world, owner username) → the request


@dataclass(frozen=True)
class Case:
    method: str          # "Service/Method"
    role: str
    whose: str           # "own", "other" or "-" (no owner)
    prep: Prep
    expected: str



# ----------------------------------------------------------------------------- requests

def create_api(w: World, _: str) -> Message:
    name = w.unique("New")
    return admin_pb2.CreateApiRequest(name=name, version="1.0.0", context=f"/{name.lower()}",
                                      production_endpoint="http://127.0.0.1:8091")


def update_api(w: World, _: str) -> Message:
    return admin_pb2.UpdateApiRequest(id=w.api().id, api=admin_pb2.Api(description="changed"),
                                      update_mask=FieldMask(paths=["description"]))


DEFINITION = "openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths: {/menu: {get: {summary: The menu}}}\n"


def api_with_definition(w: World) -> str:
    api_id = w.api().id
    api_definitions.set_api_definition(w.store, admin_pb2.SetApiDefinitionRequest(id=api_id, document=DEFINITION),
                                       ROOT)
    return api_id


def lifecycle(w: World, _: str) -> Message:
    return admin_pb2.ChangeApiLifecycleRequest(id=w.api().id, target_state=admin_pb2.Api.DEPRECATED)


def update_application(w: World, owner: str) -> Message:
    return admin_pb2.UpdateApplicationRequest(id=w.application(owner).id,
                                              application=admin_pb2.Application(description="changed"),
                                              update_mask=FieldMask(paths=["description"]))


def create_subscription(w: World, owner: str) -> Message:
    return admin_pb2.CreateSubscriptionRequest(application_id=w.application(owner).id, api_id=w.api().id)


def update_subscription_tier(w: World, owner: str) -> Message:
    return admin_pb2.UpdateSubscriptionRequest(id=w.subscription(owner).id,
                                               subscription=admin_pb2.Subscription(tier="Gold"),
                                               update_mask=FieldMask(paths=["tier"]))


def update_subscription_status(w: World, owner: str) -> Message:
    blocked = admin_pb2.Subscription(status=admin_pb2.Subscription.BLOCKED)
    return admin_pb2.UpdateSubscriptionRequest(id=w.subscription(owner).id, subscription=blocked,
                                               update_mask=FieldMask(paths=["status"]))


def generate_api_key_for_app(w: World, owner: str) -> Message:
    return admin_pb2.GenerateApiKeyRequest(api_id=w.api().id, name="web", application_id=w.application(owner).id)


def associate(w: World, owner: str) -> Message:
    # The key is the caller's own (or someone else's); the application is the same owner's.
    return admin_pb2.AssociateApiKeyRequest(id=w.api_key(owner).id, application_id=w.application(owner).id)


def update_application_key(w: World, owner: str) -> Message:
    return application_keys_pb2.UpdateApplicationKeyRequest(
        id=w.application_key(owner).id, key=application_keys_pb2.ApplicationKey(
            settings=application_keys_pb2.OAuthClientSettings(access_token_validity_seconds=600)),
        update_mask=FieldMask(paths=["settings"]))


OWNED: dict[str, Prep] = {
    "ApplicationService/GetApplication": lambda w, o: admin_pb2.GetApplicationRequest(id=w.application(o).id),
    "ApplicationService/UpdateApplication": update_application,
    "ApplicationService/DeleteApplication": lambda w, o: admin_pb2.DeleteApplicationRequest(id=w.application(o).id),
    "ApplicationService/GetApplicationUsage":
        lambda w, o: admin_pb2.GetApplicationUsageRequest(id=w.application(o).id),
    "SubscriptionService/CreateSubscription": create_subscription,
    "SubscriptionService/GetSubscription": lambda w, o: admin_pb2.GetSubscriptionRequest(id=w.subscription(o).id),
    "SubscriptionService/UpdateSubscription": update_subscription_tier,
    "SubscriptionService/DeleteSubscription":
        lambda w, o: admin_pb2.DeleteSubscriptionRequest(id=w.subscription(o).id),
    "ApiKeyService/GenerateApiKey": generate_api_key_for_app,
    "ApiKeyService/GetApiKey": lambda w, o: admin_pb2.GetApiKeyRequest(id=w.api_key(o).id),
    "ApiKeyService/RevokeApiKey": lambda w, o: admin_pb2.RevokeApiKeyRequest(id=w.api_key(o).id),
    "ApiKeyService/RegenerateApiKey": lambda w, o: admin_pb2.RegenerateApiKeyRequest(id=w.api_key(o).id),
    "ApiKeyService/AssociateApiKey": associate,
    "ApiKeyService/DissociateApiKey": lambda w, o: admin_pb2.DissociateApiKeyRequest(
        id=w.api_key(o, w.application(o).id).id),
    "ApplicationKeyService/GenerateApplicationKey":
        lambda w, o: application_keys_pb2.GenerateApplicationKeyRequest(application_id=w.application(o).id),
    "ApplicationKeyService/ListApplicationKeys":
        lambda w, o: application_keys_pb2.ListApplicationKeysRequest(application_id=w.application(o).id),
    "ApplicationKeyService/GetApplicationKey":
        lambda w, o: application_keys_pb2.GetApplicationKeyRequest(id=w.application_key(o).id),
    "ApplicationKeyService/UpdateApplicationKey": update_application_key,
    "ApplicationKeyService/DeleteApplicationKey":
        lambda w, o: application_keys_pb2.DeleteApplicationKeyRequest(id=w.application_key(o).id),
    "ApplicationKeyService/ListConsumerSecrets":
        lambda w, o: application_keys_pb2.ListConsumerSecretsRequest(application_key_id=w.application_key(o).id),
    "ApplicationKeyService/RegenerateConsumerSecret":
        lambda w, o: application_keys_pb2.RegenerateConsumerSecretRequest(
            application_key_id=w.application_key(o).id),
}

def _scope(w: World) -> users_pb2.Scope:
    return users.create_scope(w.store, users_pb2.CreateScopeRequest(scope=users_pb2.Scope(name=w.unique("s:"))), ROOT)


def _resident_id(w: World) -> str:
    return key_managers.list_key_managers(w.store, key_managers_pb2.ListKeyManagersRequest(), ROOT).key_managers[0].id


def _policy(w: World) -> throttling_pb2.ThrottlingPolicy:
    return throttling_policies.create_throttling_policy(w.store, throttling_pb2.CreateThrottlingPolicyRequest(
        policy=throttling_pb2.ThrottlingPolicy(name=w.unique("P"), kind=throttling_pb2.ThrottlingPolicy.API,
                                               request_count=10, unit=throttling_pb2.ThrottlingPolicy.MINUTE)), ROOT)


def _organization(w: World) -> str:
    return organizations.create_organization(w.store, admin_pb2.CreateOrganizationRequest(id=w.unique("org-")),
                                             ROOT).id


ADMIN_ONLY: dict[str, Prep] = {
    "ThrottlingPolicyService/CreateThrottlingPolicy": lambda w, _: throttling_pb2.CreateThrottlingPolicyRequest(
        policy=throttling_pb2.ThrottlingPolicy(name=w.unique("P"), kind=throttling_pb2.ThrottlingPolicy.API)),
    "ThrottlingPolicyService/UpdateThrottlingPolicy": lambda w, _: throttling_pb2.UpdateThrottlingPolicyRequest(
        id=_policy(w).id, policy=throttling_pb2.ThrottlingPolicy(description="changed"),
        update_mask=FieldMask(paths=["description"])),
    "ThrottlingPolicyService/DeleteThrottlingPolicy":
        lambda w, _: throttling_pb2.DeleteThrottlingPolicyRequest(id=_policy(w).id),
    "UserService/CreateUser": lambda w, _: users_pb2.CreateUserRequest(user=users_pb2.User(
        username=w.unique("new-user"), password="a-long-password", roles=["subscriber"])),
    "UserService/GetUser": lambda w, _: users_pb2.GetUserRequest(id=w.user(["creator"]).id),
    "UserService/ListUsers": lambda w, _: users_pb2.ListUsersRequest(),
    "UserService/UpdateUser": lambda w, _: users_pb2.UpdateUserRequest(
        id=w.user(["creator"]).id, user=users_pb2.User(roles=["publisher"]), update_mask=FieldMask(paths=["roles"])),
    "UserService/DeleteUser": lambda w, _: users_pb2.DeleteUserRequest(id=w.user(["creator"]).id),
    "UserService/CreateScope": lambda w, _: users_pb2.CreateScopeRequest(scope=users_pb2.Scope(name=w.unique("s:"))),
    "UserService/ListScopes": lambda w, _: users_pb2.ListScopesRequest(),
    "UserService/UpdateScope": lambda w, _: users_pb2.UpdateScopeRequest(
        id=_scope(w).id, scope=users_pb2.Scope(description="changed"), update_mask=FieldMask(paths=["description"])),
    "UserService/DeleteScope": lambda w, _: users_pb2.DeleteScopeRequest(id=_scope(w).id),
    "KeyManagerService/GetKeyManager": lambda w, _: key_managers_pb2.GetKeyManagerRequest(id=_resident_id(w)),
    "KeyManagerService/ListKeyManagers": lambda w, _: key_managers_pb2.ListKeyManagersRequest(),
    "OrganizationService/CreateOrganization":
        lambda w, _: admin_pb2.CreateOrganizationRequest(id=w.unique("org-")),
    "OrganizationService/ListOrganizations": lambda w, _: admin_pb2.ListOrganizationsRequest(),
    "OrganizationService/CreateOrganizationAdminCredential":
        lambda w, _: admin_pb2.CreateOrganizationAdminCredentialRequest(id=_organization(w)),
    "OrganizationService/UpdateOrganization": lambda w, _: admin_pb2.UpdateOrganizationRequest(
        id="default", organization=admin_pb2.Organization(self_signup=False),
        update_mask=FieldMask(paths=["self_signup"])),
    "SigningKeyService/ListSigningKeys": lambda w, _: signing_keys_pb2.ListSigningKeysRequest(),
    "SigningKeyService/RotateSigningKey": lambda w, _: signing_keys_pb2.RotateSigningKeyRequest(),
    "AuditService/ListAuditRecords": lambda w, _: audit_pb2.ListAuditRecordsRequest(),
    "GatewayService/ListGateways": lambda w, _: gateways_pb2.ListGatewaysRequest(),
    "LabelService/SetLabels": lambda w, _: labels_pb2.SetLabelsRequest(
        kind="scope", object_id=_scope(w).id, labels=[labels_pb2.Label(key="team", value="pizza")]),
    "LabelService/ListLabels": lambda w, _: labels_pb2.ListLabelsRequest(selector="team=pizza"),
}


def _cases() -> Iterator[Case]:
    # APIs: everyone reads; admin, publisher and creator write; lifecycle: admin and publisher.
    api_rows = {
        "ApiService/CreateApi": (create_api, {"admin": OK, "publisher": OK, "creator": OK, "subscriber": DENIED}),
        "ApiService/GetApi": (lambda w, _: admin_pb2.GetApiRequest(id=w.api().id),
                              {"admin": OK, "publisher": OK, "creator": OK, "subscriber": OK}),
        "ApiService/ListApis": (lambda w, _: admin_pb2.ListApisRequest(),
                                {"admin": OK, "publisher": OK, "creator": OK, "subscriber": OK}),
        "ApiService/UpdateApi": (update_api, {"admin": OK, "publisher": OK, "creator": OK, "subscriber": DENIED}),
        "ApiService/DeleteApi": (lambda w, _: admin_pb2.DeleteApiRequest(id=w.api(published=False).id),
                                 {"admin": OK, "publisher": OK, "creator": OK, "subscriber": DENIED}),
        "ApiService/ChangeApiLifecycle": (lifecycle, {"admin": OK, "publisher": OK, "creator": DENIED,
                                                      "subscriber": DENIED}),
        # An API's OpenAPI document: its readers read it, its authors set and delete it.
        "ApiService/SetApiDefinition": (
            lambda w, _: admin_pb2.SetApiDefinitionRequest(id=w.api().id, document=DEFINITION),
            {"admin": OK, "publisher": OK, "creator": OK, "subscriber": DENIED}),
        "ApiService/GetApiDefinition": (
            lambda w, _: admin_pb2.GetApiDefinitionRequest(id=api_with_definition(w)),
            {"admin": OK, "publisher": OK, "creator": OK, "subscriber": OK}),
        "ApiService/DeleteApiDefinition": (
            lambda w, _: admin_pb2.DeleteApiDefinitionRequest(id=api_with_definition(w)),
            {"admin": OK, "publisher": OK, "creator": OK, "subscriber": DENIED}),
        # Throttling policies: everyone reads (to pick a tier); only admins change them.
        "ThrottlingPolicyService/GetThrottlingPolicy": (
            lambda w, _: throttling_pb2.GetThrottlingPolicyRequest(id=_policy(w).id),
            {"admin": OK, "publisher": OK, "creator": OK, "subscriber": OK}),
        "ThrottlingPolicyService/ListThrottlingPolicies": (
            lambda w, _: throttling_pb2.ListThrottlingPoliciesRequest(),
            {"admin": OK, "publisher": OK, "creator": OK, "subscriber": OK}),
    }
    for method, (prep, expected) in api_rows.items():
        for role in ROLES:
            yield Case(method, role, "-", prep, expected[role])
    # Applications and keys: admin any, subscriber own (other → NOT_FOUND), others never.
    for method, prep in OWNED.items():
        for role in ROLES:
            for whose in ("own", "other"):
                if role == "admin":
                    expected = OK
                elif role == "subscriber":
                    expected = OK if whose == "own" else NOT_FOUND
                else:
                    expected = DENIED
                yield Case(method, role, whose, prep, expected)
    # Creating an application or an API key of one's own: admin and subscriber.
    for role in ROLES:
        expected = OK if role in ("admin", "subscriber") else DENIED
        yield Case("ApplicationService/CreateApplication", role, "own",
                   lambda w, o: admin_pb2.CreateApplicationRequest(name=w.unique("Mine"), owner=o), expected)
        yield Case("ApiKeyService/GenerateApiKey", role, "-",
                   lambda w, _: admin_pb2.GenerateApiKeyRequest(api_id=w.api().id, name="web"), expected)
        yield Case("ApplicationService/ListApplications", role, "-",
                   lambda w, _: admin_pb2.ListApplicationsRequest(), expected)
        yield Case("SubscriptionService/ListSubscriptions", role, "-",
                   lambda w, _: admin_pb2.ListSubscriptionsRequest(), expected)
        yield Case("ApiKeyService/ListApiKeys", role, "-", lambda w, _: admin_pb2.ListApiKeysRequest(), expected)
    # Named rules beyond "own": an application for someone else, a subscription's status.
    for role, expected in (("admin", OK), ("subscriber", DENIED)):
        yield Case("ApplicationService/CreateApplication", role, "other",
                   lambda w, o: admin_pb2.CreateApplicationRequest(name=w.unique("Theirs"), owner=o), expected)
        yield Case("SubscriptionService/UpdateSubscription", role, "own", update_subscription_status, expected)
    # Deployment administration: admin only.
    for method, prep in ADMIN_ONLY.items():
        for role in ROLES:
            yield Case(method, role, "-", prep, OK if role == "admin" else DENIED)


CASES = list(_cases())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world, server = build_world(tmp_path_factory.mktemp("roles"))
    try:
        yield world
    finally:
        stop_world(world, server)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", CASES, ids=[f"{c.role}-{c.method.split('/')[1]}-{c.whose}" for c in CASES])
def test_role_table(world: World, case: Case, transport: str) -> None:
    owner = USERS[case.role] if case.whose == "own" else OTHER
    request = case.prep(world, owner)
    outcome = world.call(transport, case.method, request, world.token_of(case.role))
    assert outcome.status == case.expected, outcome.body


def test_the_table_covers_every_rpc() -> None:
    covered = {f"portcullis.admin.v1.{c.method}" for c in CASES}
    # These need an external provider, an authz_server replica (explain: tested through the
    # mesh in tests/integration/test_explain.py) or another deployment setting: the denial half of
    # their rows is proven for every RPC by test_every_role_outside_a_row_is_denied.
    assert set(PERMISSIONS) - covered <= {
        f"portcullis.admin.v1.{name}" for name in (
            "KeyManagerService/CreateKeyManager", "KeyManagerService/UpdateKeyManager",
            "KeyManagerService/DeleteKeyManager", "ApplicationKeyService/MapApplicationKey",
            "ApplicationKeyService/CreateConsumerSecret", "ApplicationKeyService/DeleteConsumerSecret",
            "BackendSigningKeyService/ListBackendSigningKeys", "BackendSigningKeyService/RotateBackendSigningKey",
            "DecisionService/ExplainDecision")
    }


# A subscriber sees only the APIs it could use; every other role sees every state.
LIFECYCLE_PATHS = {
    "CREATED": (),
    "PUBLISHED": (admin_pb2.Api.PUBLISHED,),
    "DEPRECATED": (admin_pb2.Api.PUBLISHED, admin_pb2.Api.DEPRECATED),
    "RETIRED": (admin_pb2.Api.PUBLISHED, admin_pb2.Api.RETIRED),
    "BLOCKED": (admin_pb2.Api.PUBLISHED, admin_pb2.Api.BLOCKED),
}
CONSUMER_STATES = {"PUBLISHED", "DEPRECATED"}
VISIBILITY = [(role, state, OK if role != "subscriber" or state in CONSUMER_STATES else NOT_FOUND)
              for role in ROLES for state in LIFECYCLE_PATHS]


def api_in(w: World, state: str) -> admin_pb2.Api:
    api = w.api(published=False)
    for target in LIFECYCLE_PATHS[state]:
        api = apis.change_api_lifecycle(w.store, admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=target),
                                        ROOT)
    return api


def listed_api_ids(w: World, transport: str, token: str) -> set[str]:
    ids: set[str] = set()
    page_token = ""
    while True:
        outcome = w.call(transport, "ApiService/ListApis",
                         admin_pb2.ListApisRequest(page_size=500, page_token=page_token), token)
        assert outcome.status == OK, outcome.body
        ids |= {api["id"] for api in outcome.body.get("apis", [])}
        page_token = outcome.body.get("next_page_token", "")
        if not page_token:
            return ids


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("role,state,expected", VISIBILITY, ids=[f"{r}-{s}" for r, s, _ in VISIBILITY])
def test_api_visibility_by_lifecycle(world: World, transport: str, role: str, state: str, expected: str) -> None:
    api = api_in(world, state)
    token = world.token_of(role)
    got = world.call(transport, "ApiService/GetApi", admin_pb2.GetApiRequest(id=api.id), token)
    assert got.status == expected, got.body
    assert (api.id in listed_api_ids(world, transport, token)) == (expected == OK)
    if expected == NOT_FOUND:  # exactly what a missing API answers: nothing to probe
        missing = world.call(transport, "ApiService/GetApi", admin_pb2.GetApiRequest(id="no-such-api"), token)
        assert got.body == missing.body.replace("no-such-api", api.id)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_subscriber_who_also_creates_sees_every_state(world: World, transport: str) -> None:
    user = world.user(["subscriber", "creator"])
    token = world.password_token(user.username)
    hidden = {state: api_in(world, state) for state in ("CREATED", "RETIRED", "BLOCKED")}
    for api in hidden.values():
        assert world.call(transport, "ApiService/GetApi", admin_pb2.GetApiRequest(id=api.id), token).status == OK
    assert {api.id for api in hidden.values()} <= listed_api_ids(world, transport, token)


@pytest.mark.parametrize("role", [*ROLES, "none"])
def test_every_role_outside_a_row_is_denied(world: World, role: str) -> None:
    """Every RPC a role is not listed for is refused before its handler runs (an empty
    request would otherwise be an INVALID_ARGUMENT or NOT_FOUND)."""
    roles = frozenset({Role(role)}) if role != "none" else frozenset()
    caller = Caller(USERS.get(role, "nobody"), "default", roles=roles)
    for method, permission in PERMISSIONS.items():
        if caller.roles & permission.roles:
            continue
        request = world.bindings[method].request_class()
        with pytest.raises(PermissionDenied):
            world.dispatcher.call(method, request, caller)
