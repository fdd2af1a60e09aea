"""Organization bootstrap (issue 18, item 4).

`POST /v1/organizations` succeeded, but nothing could then be made in the new
organization: every credential acts only in its own organization, so even the bootstrap
admin was refused ("this credential acts only in organization 'default'"). Now an admin
of the default organization gives the organization one bootstrap admin credential
(`POST /v1/organizations/{id}/admin-credential`, gRPC
`OrganizationService/CreateOrganizationAdminCredential`), shown once, audited in both
organizations, and good for that organization only.

Real admin_api (create_admin_app: migrations, bootstrap, gRPC on 127.0.0.1:0) with its
REST app and the resident key manager's OAuth2 routes in-process; on SQLite and on a
real PostgreSQL, where two replicas share the database: the credential is made on one
and used (and, once rotated, refused) on the other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import MetaData, select
from starlette.testclient import TestClient

from admin_api.app import AdminApp, create_admin_app
from admin_api.db.models import AdminCredential
from admin_api.transports.oauth2.resident import ResidentKeyManager
from admin_api.transports.oauth2.routes import oauth_routes
from admin_api.transports.rest import create_app
from portcullis.admin.v1 import admin_pb2, admin_pb2_grpc, audit_pb2, audit_pb2_grpc, users_pb2, users_pb2_grpc
from portcullis_shared.credentials import credential_hash
from portcullis_shared.scopes import ADMIN_SCOPE
from portcullis_shared.settings import MeshSettings

PASSWORD = "correct-horse-battery-9"
METHOD = "portcullis.admin.v1.OrganizationService/CreateOrganizationAdminCredential"
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass
class Replica:
    app: AdminApp
    rest: TestClient
    channel: grpc.Channel

    def call(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.rest.request(method, path, headers={"authorization": f"Bearer {token}"}, **kwargs)

    def ok(self, token: str, method: str, path: str, expected: int = 200, **kwargs: Any) -> Any:
        response = self.call(token, method, path, **kwargs)
        assert response.status_code == expected, response.text
        return response.json() if response.content else None


@dataclass
class Deployment:
    replicas: list[Replica]
    root_token: str          # the deployment's bootstrap admin token (default organization)
    backend: str

    @property
    def first(self) -> Replica:
        return self.replicas[0]

    @property
    def other(self) -> Replica:
        """Another replica than the first on PostgreSQL; the only one on SQLite."""
        return self.replicas[-1]

    def new_organization(self) -> str:
        organization = unique("org")
        self.first.ok(self.root_token, "POST", "/v1/organizations", 201, json={"id": organization})
        return organization

    def admin_credential(self, organization: str, *, rotate: bool = False, expected: int = 201) -> Any:
        return self.first.ok(self.root_token, "POST", f"/v1/organizations/{organization}/admin-credential",
                             expected, json={"rotate": rotate})


def _start_replica(settings: MeshSettings) -> Replica:
    app = create_admin_app(settings, grpc_port=0)
    app.start()
    rest = TestClient(create_app(app.dispatcher, extra_routes=oauth_routes(ResidentKeyManager.create(app.store))),
                      raise_server_exceptions=False)
    rest.__enter__()
    return Replica(app, rest, grpc.insecure_channel(f"127.0.0.1:{app.grpc_port}"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp(f"bootstrap-{request.param}")
    url = ""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        url = server.create_database(migrated=False)   # admin_api migrates it at start
    settings = MeshSettings(data_dir=data_dir, database_url_override=url)
    replicas: list[Replica] = []
    try:
        for _ in range(2 if url else 1):
            replicas.append(_start_replica(settings))
        yield Deployment(replicas, settings.admin_token_file.read_text(encoding="utf-8").strip(), request.param)
    finally:
        for replica in replicas:
            replica.rest.__exit__(None, None, None)
            replica.channel.close()
            replica.app.stop()
        if url:
            server.drop_database(url)


def user_token(replica: Replica, admin_token: str, username: str, roles: list[str]) -> str:
    """A user of the admin token's organization and their admin-API token (password grant
    at a first-party client of that organization, scope portcullis:admin)."""
    replica.ok(admin_token, "POST", "/v1/users", 201, json={"username": username, "password": PASSWORD,
                                                             "roles": roles})
    console = replica.ok(admin_token, "POST", "/v1/applications", 201, json={"name": unique("console")})
    key = replica.ok(admin_token, "POST", f"/v1/applications/{console['id']}/keys", 201,
                     json={"settings": {"grant_types": ["password"], "first_party": True}})
    answer = replica.rest.post("/oauth2/token", auth=(key["key"]["consumer_key"], key["consumer_secret"]),
                               data={"grant_type": "password", "username": username, "password": PASSWORD,
                                     "scope": ADMIN_SCOPE})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def grpc_metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


# --- the path it opens ------------------------------------------------------------------

def test_a_new_organizations_credential_makes_its_first_admin_user_and_application(deployment: Deployment) -> None:
    organization = deployment.new_organization()
    refused = deployment.first.call(deployment.root_token, "POST", "/v1/users",
                                    json={"username": "olga", "password": PASSWORD, "organization_id": organization})
    assert refused.status_code == 403, refused.text      # what issue 18 found: no way in

    made = deployment.admin_credential(organization)
    assert made["organization_id"] == organization and made["subject"] == f"bootstrap-admin:{organization}"
    assert made["role"] == "admin" and made["rotated"] is False and made["value"].startswith("pca_")
    token = made["value"]
    other = deployment.other        # another replica on PostgreSQL: the credential is in the database
    olga = other.ok(token, "POST", "/v1/users", 201, json={"username": "olga", "password": PASSWORD,
                                                           "roles": ["admin"]})
    assert olga["organization_id"] == organization
    shop = other.ok(token, "POST", "/v1/applications", 201, json={"name": "Shop"})
    assert shop["organization_id"] == organization
    assert [u["username"] for u in other.ok(token, "GET", "/v1/users")["users"]] == ["olga"]

    # The organization's own admin user then acts there with a token of its own.
    oscars = user_token(other, token, "oscar", ["admin"])
    assert {u["username"] for u in other.ok(oscars, "GET", "/v1/users")["users"]} == {"olga", "oscar"}
    assert other.ok(oscars, "GET", f"/v1/applications/{shop['id']}")["name"] == "Shop"
    assert [o["id"] for o in other.ok(oscars, "GET", "/v1/organizations")["organizations"]] == [organization]


def test_the_same_path_over_grpc(deployment: Deployment) -> None:
    organization = deployment.new_organization()
    organizations = admin_pb2_grpc.OrganizationServiceStub(deployment.first.channel)
    made = organizations.CreateOrganizationAdminCredential(
        admin_pb2.CreateOrganizationAdminCredentialRequest(id=organization),
        metadata=grpc_metadata(deployment.root_token), timeout=10)
    assert made.subject == f"bootstrap-admin:{organization}" and made.value.startswith("pca_")
    channel = deployment.other.channel
    user = users_pb2_grpc.UserServiceStub(channel).CreateUser(
        users_pb2.CreateUserRequest(user=users_pb2.User(username="olga", password=PASSWORD, roles=["admin"])),
        metadata=grpc_metadata(made.value), timeout=10)
    application = admin_pb2_grpc.ApplicationServiceStub(channel).CreateApplication(
        admin_pb2.CreateApplicationRequest(name="Shop"), metadata=grpc_metadata(made.value), timeout=10)
    assert user.organization_id == application.organization_id == organization

    with pytest.raises(grpc.RpcError) as again:
        organizations.CreateOrganizationAdminCredential(
            admin_pb2.CreateOrganizationAdminCredentialRequest(id=organization),
            metadata=grpc_metadata(deployment.root_token), timeout=10)
    assert again.value.code() is grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as elsewhere:
        admin_pb2_grpc.ApplicationServiceStub(channel).CreateApplication(
            admin_pb2.CreateApplicationRequest(name="Shop", organization_id="default"),
            metadata=grpc_metadata(made.value), timeout=10)
    assert elsewhere.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as unknown:
        organizations.CreateOrganizationAdminCredential(
            admin_pb2.CreateOrganizationAdminCredentialRequest(id=unique("nowhere")),
            metadata=grpc_metadata(deployment.root_token), timeout=10)
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as not_super:
        organizations.CreateOrganizationAdminCredential(
            admin_pb2.CreateOrganizationAdminCredentialRequest(id=organization, rotate=True),
            metadata=grpc_metadata(made.value), timeout=10)
    assert not_super.value.code() is grpc.StatusCode.PERMISSION_DENIED


# --- nothing more across organizations --------------------------------------------------

def test_the_credential_is_refused_in_the_default_and_in_a_third_organization(deployment: Deployment) -> None:
    organization, third = deployment.new_organization(), deployment.new_organization()
    token = deployment.admin_credential(organization)["value"]
    default_user = deployment.first.ok(deployment.root_token, "POST", "/v1/users", 201,
                                       json={"username": unique("dora"), "password": PASSWORD})
    replica = deployment.other
    for elsewhere in ("default", third):
        for path, body in (("/v1/users", {"username": "eve", "password": PASSWORD, "organization_id": elsewhere}),
                           ("/v1/applications", {"name": "Eve", "organization_id": elsewhere})):
            refused = replica.call(token, "POST", path, json=body)
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "permission_denied"
            assert f"acts only in organization {organization!r}" in refused.json()["detail"]
    assert replica.call(token, "GET", f"/v1/users/{default_user['id']}").status_code == 404
    assert replica.call(token, "GET", "/v1/applications", params={"organization_id": "default"}).status_code == 403
    assert replica.call(token, "POST", "/v1/organizations", json={"id": unique("mine")}).status_code == 403
    # It cannot hand itself, or a third organization, another credential either.
    for target in (organization, third, "default"):
        refused = replica.call(token, "POST", f"/v1/organizations/{target}/admin-credential", json={"rotate": True})
        assert refused.status_code == 403, refused.text
    assert replica.call(token, "GET", "/v1/audit-records").status_code == 200   # its own log: yes


def test_only_admins_of_the_default_organization_may_make_one(deployment: Deployment) -> None:
    organization, third = deployment.new_organization(), deployment.new_organization()
    publisher = user_token(deployment.first, deployment.root_token, unique("pat"), ["publisher"])
    refused = deployment.first.call(publisher, "POST", f"/v1/organizations/{organization}/admin-credential", json={})
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied", refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")

    # An admin user of another organization (made with that organization's credential).
    organization_admin = user_token(deployment.first, deployment.admin_credential(organization)["value"],
                                    "ada", ["admin"])
    for target in (third, organization, unique("nowhere")):   # an unknown one too: nothing to probe
        refused = deployment.first.call(organization_admin, "POST", f"/v1/organizations/{target}/admin-credential",
                                        json={})
        assert refused.status_code == 403, refused.text
        assert "only an admin of the default organization" in refused.json()["detail"]

    missing = deployment.first.call(deployment.root_token, "POST", f"/v1/organizations/{unique('nowhere')}"
                                    "/admin-credential", json={})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found", missing.text
    default = deployment.first.call(deployment.root_token, "POST", "/v1/organizations/default/admin-credential",
                                    json={})
    assert default.status_code == 400 and default.json()["field"] == "id", default.text
    # A default-organization admin user (not only the bootstrap token) may.
    root_user = user_token(deployment.first, deployment.root_token, unique("root"), ["admin"])
    assert deployment.first.ok(root_user, "POST", f"/v1/organizations/{third}/admin-credential", 201,
                               json={})["subject"] == f"bootstrap-admin:{third}"


# --- once, and rotation ------------------------------------------------------------------

def test_a_second_call_is_409_and_rotate_invalidates_the_old_credential_at_once(deployment: Deployment) -> None:
    organization = deployment.new_organization()
    old = deployment.admin_credential(organization)["value"]
    again = deployment.first.call(deployment.root_token, "POST", f"/v1/organizations/{organization}/admin-credential",
                                  json={})
    assert again.status_code == 409 and again.json()["code"] == "already_exists", again.text
    assert "rotate" in again.json()["detail"] and old not in again.text
    for replica in deployment.replicas:
        assert replica.call(old, "GET", "/v1/users").status_code == 200   # the 409 changed nothing

    rotated = deployment.admin_credential(organization, rotate=True)
    assert rotated["rotated"] is True and rotated["value"] != old
    for replica in deployment.replicas:   # at once, on every replica: no cache to wait for
        refused = replica.call(old, "GET", "/v1/users")
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated", refused.text
        assert replica.call(rotated["value"], "GET", "/v1/users").status_code == 200
    with pytest.raises(grpc.RpcError) as caught:
        users_pb2_grpc.UserServiceStub(deployment.other.channel).ListUsers(
            users_pb2.ListUsersRequest(), metadata=grpc_metadata(old), timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


# --- audited in both organizations; only the hash is kept --------------------------------

def test_each_call_is_audited_in_both_organizations(deployment: Deployment) -> None:
    organization, third = deployment.new_organization(), deployment.new_organization()
    first = deployment.admin_credential(organization)["value"]
    second = deployment.admin_credential(organization, rotate=True)["value"]
    assert deployment.other.call(second, "POST", f"/v1/organizations/{third}/admin-credential",
                                 json={}).status_code == 403

    in_default = deployment.first.ok(deployment.root_token, "GET", "/v1/audit-records",
                                     params={"target_kind": "organization", "target_id": organization})["records"]
    made = [r for r in in_default if r["method"] == METHOD]
    assert [(r["organization_id"], r["subject"], r["outcome"]) for r in made] == \
        [("default", "bootstrap-admin", "SUCCEEDED")] * 2
    assert made[0]["credential_kind"] == "admin_token" and made[0]["roles"] == ["admin"]

    audit = audit_pb2_grpc.AuditServiceStub(deployment.other.channel)
    in_target = audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(target_kind="organization"),
                                       metadata=grpc_metadata(second), timeout=10).records
    own = [r for r in in_target if r.method == METHOD]
    assert [(r.organization_id, r.target_id, r.subject, audit_pb2.AuditRecord.Outcome.Name(r.outcome)) for r in own] \
        == [(organization, organization, "bootstrap-admin", "SUCCEEDED")] * 2 + \
           [(organization, third, f"bootstrap-admin:{organization}", "PERMISSION_DENIED")]
    assert "created by bootstrap-admin of organization 'default'" in own[0].detail
    assert "rotated" in own[1].detail
    # The third organization's log holds nothing of it (the refused attempt is the caller's).
    third_token = deployment.admin_credential(third)["value"]
    third_log = deployment.other.ok(third_token, "GET", "/v1/audit-records")["records"]
    assert [r["organization_id"] for r in third_log if r["method"] == METHOD] == [third]
    for token in (first, second, third_token):
        assert token not in repr(in_default) + repr(in_target) + repr(third_log)


def test_the_credential_is_stored_only_as_its_hash(deployment: Deployment) -> None:
    organization = deployment.new_organization()
    first = deployment.admin_credential(organization)["value"]
    second = deployment.admin_credential(organization, rotate=True)["value"]
    engine = deployment.first.app.store.db.engine
    with engine.connect() as connection:
        rows = connection.execute(select(AdminCredential.token_hash, AdminCredential.organization_id,
                                         AdminCredential.role)
                                  .where(AdminCredential.subject == f"bootstrap-admin:{organization}")).all()
        assert [tuple(row) for row in rows] == [(credential_hash(second), organization, "admin")]
        metadata = MetaData()
        metadata.reflect(bind=connection)
        for table in metadata.sorted_tables:
            dump = repr(connection.execute(table.select()).all())
            for value in (first, second):
                assert value not in dump, table.name
                assert value.removeprefix("pca_") not in dump, table.name
    if deployment.backend == "sqlite":   # nor in any page of the database file or its WAL
        blob = b"".join(path.read_bytes() for path in Path(deployment.first.app.settings.data_dir).glob("portcullis.db*"))
        assert first.encode() not in blob and second.encode() not in blob
