"""Users (argon2 passwords, roles) and scopes bound to roles: CRUD, authentication,
entitlement and organization isolation."""

from __future__ import annotations


import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from admin_api.access.caller import Caller, Role
from admin_api.db import models
from admin_api.errors import AlreadyExists, InvalidArgument, NotFound
from admin_api.services import organizations, users
from portcullis.admin.v1 import admin_pb2, users_pb2

ADMIN = Caller(subject="alice", organization_id="default", role=Role.ADMIN)
ACME = Caller(subject="mallory", organization_id="acme", role=Role.ADMIN)
PASSWORD = "correct horse battery staple"


pytestmark = pytest.mark.key_store


def _user(store, username: str = "bob", roles: list[str] | None = None, caller: Caller = ADMIN) -> users_pb2.User:
    return users.create_user(store, users_pb2.CreateUserRequest(user=users_pb2.User(
        username=username, password=PASSWORD, roles=roles or [])), caller)


def _scope(store, name: str, roles: list[str] | None = None, caller: Caller = ADMIN) -> users_pb2.Scope:
    return users.create_scope(store, users_pb2.CreateScopeRequest(scope=users_pb2.Scope(
        name=name, roles=roles or [])), caller)


def test_password_is_write_only_and_argon2_hashed(store, db_path):
    user = _user(store, roles=["reader", "reader", "writer"])
    assert list(user.roles) == ["reader", "writer"] and user.password == ""
    with store.read() as session:
        stored = session.get_one(models.User, user.id).password_hash
    assert stored.startswith("$argon2id$")
    fetched = users.get_user(store, users_pb2.GetUserRequest(id=user.id), ADMIN)
    assert PASSWORD not in str(fetched) and "argon2" not in str(fetched)
    store.db.dispose()
    for path in db_path.parent.iterdir():
        assert PASSWORD.encode() not in path.read_bytes(), path.name


def test_authenticate(store):
    user = _user(store, roles=["reader"])
    identity = users.authenticate_user(store, "default", "bob", PASSWORD)
    assert identity == users.UserIdentity(user_id=user.id, username="bob", roles=("reader",))
    assert users.authenticate_user(store, "default", "bob", PASSWORD + "!") is None
    assert users.authenticate_user(store, "default", "nobody", PASSWORD) is None
    assert users.authenticate_user(store, "default", "bob", "") is None


def test_update_password_and_roles(store):
    user = _user(store)
    users.update_user(store, users_pb2.UpdateUserRequest(id=user.id, user=users_pb2.User(
        password="another long password", roles=["admin"]), update_mask=FieldMask(paths=["password", "roles"])), ADMIN)
    assert users.authenticate_user(store, "default", "bob", PASSWORD) is None
    assert users.authenticate_user(store, "default", "bob", "another long password").roles == ("admin",)
    assert users.roles_of(store, "default", "bob") == ("admin",)
    with pytest.raises(InvalidArgument, match="username cannot be changed"):
        users.update_user(store, users_pb2.UpdateUserRequest(id=user.id, user=users_pb2.User(username="x"),
                                                             update_mask=FieldMask(paths=["username"])), ADMIN)


@pytest.mark.parametrize(("user", "field", "fragment"), [
    pytest.param(users_pb2.User(password=PASSWORD), "user.username", "required", id="username-missing"),
    pytest.param(users_pb2.User(username="has space", password=PASSWORD), "user.username", "letters, digits",
                 id="username-space"),
    pytest.param(users_pb2.User(username="bob", password="short"), "user.password", "8 to 1024", id="password-short"),
    pytest.param(users_pb2.User(username="bob", password=PASSWORD, roles=["no way"]), "user.roles", "role 'no way'",
                 id="role-name"),
])
def test_user_validation(store, user, field, fragment):
    with pytest.raises(InvalidArgument, match=fragment) as caught:
        users.create_user(store, users_pb2.CreateUserRequest(user=user), ADMIN)
    assert caught.value.field == field


def test_username_unique_per_organization(store):
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    _user(store)
    with pytest.raises(AlreadyExists, match="a user named 'bob' already exists"):
        _user(store)
    other = _user(store, roles=["acme-role"], caller=ACME)
    assert other.organization_id == "acme"
    assert users.roles_of(store, "acme", "bob") == ("acme-role",)
    assert users.roles_of(store, "default", "bob") == ()
    assert users.authenticate_user(store, "acme", "bob", PASSWORD).user_id == other.id
    with pytest.raises(NotFound):
        users.get_user(store, users_pb2.GetUserRequest(id=other.id), ADMIN)
    assert [u.username for u in users.list_users(store, users_pb2.ListUsersRequest(), ACME).users] == ["bob"]


def test_delete_user(store):
    user = _user(store, roles=["reader"])
    users.delete_user(store, users_pb2.DeleteUserRequest(id=user.id), ADMIN)
    assert users.authenticate_user(store, "default", "bob", PASSWORD) is None
    assert users.roles_of(store, "default", "bob") == ()


def test_list_users_pages(store):
    for index in range(3):
        _user(store, f"user{index}")
    first = users.list_users(store, users_pb2.ListUsersRequest(page_size=2), ADMIN)
    second = users.list_users(store, users_pb2.ListUsersRequest(page_size=2, page_token=first.next_page_token), ADMIN)
    assert [u.username for u in first.users] + [u.username for u in second.users] == ["user0", "user1", "user2"]
    assert second.next_page_token == ""


@pytest.mark.parametrize(("roles", "requested", "granted"), [
    pytest.param([], ["menu:read"], ["menu:read"], id="unbound-scope-to-anyone"),
    pytest.param([], ["menu:write"], [], id="bound-scope-needs-role"),
    pytest.param(["chef"], ["menu:write"], ["menu:write"], id="role-grants"),
    pytest.param(["waiter", "chef"], ["orders:admin", "menu:write", "menu:read"], ["menu:write", "menu:read"],
                 id="request-order-kept"),
    pytest.param(["chef"], ["undefined"], [], id="undefined-never"),
    pytest.param(["chef"], ["menu:read", "menu:read"], ["menu:read"], id="no-duplicates"),
    pytest.param(["boss"], ["orders:admin"], ["orders:admin"], id="another-role"),
    pytest.param(["chef"], [], [], id="nothing-requested"),
])
def test_entitled_scopes(store, roles, requested, granted):
    _scope(store, "menu:read")
    _scope(store, "menu:write", ["chef"])
    _scope(store, "orders:admin", ["boss"])
    assert users.entitled_scopes(store, "default", roles, requested) == granted


def test_scopes_crud_and_isolation(store):
    organizations.create_organization(store, admin_pb2.CreateOrganizationRequest(id="acme", name="Acme"), ADMIN)
    scope = _scope(store, "menu:write", ["chef"])
    with pytest.raises(AlreadyExists):
        _scope(store, "menu:write")
    with pytest.raises(InvalidArgument, match="RFC 6749") as caught:
        _scope(store, "menu write")
    assert caught.value.field == "scope.name"
    changed = users.update_scope(store, users_pb2.UpdateScopeRequest(id=scope.id, scope=users_pb2.Scope(
        roles=["cook"], description="change the menu"), update_mask=FieldMask(paths=["roles", "description"])), ADMIN)
    assert list(changed.roles) == ["cook"] and changed.description == "change the menu"
    assert users.entitled_scopes(store, "default", ["cook"], ["menu:write"]) == ["menu:write"]
    assert users.entitled_scopes(store, "default", ["chef"], ["menu:write"]) == []
    with pytest.raises(InvalidArgument, match="name cannot be changed"):
        users.update_scope(store, users_pb2.UpdateScopeRequest(id=scope.id, scope=users_pb2.Scope(name="x"),
                                                               update_mask=FieldMask(paths=["name"])), ADMIN)
    # The other organization neither sees nor inherits it.
    assert users.list_scopes(store, users_pb2.ListScopesRequest(), ACME).scopes == []
    assert users.entitled_scopes(store, "acme", ["cook"], ["menu:write"]) == []
    with pytest.raises(NotFound):
        users.delete_scope(store, users_pb2.DeleteScopeRequest(id=scope.id), ACME)
    users.delete_scope(store, users_pb2.DeleteScopeRequest(id=scope.id), ADMIN)
    assert users.list_scopes(store, users_pb2.ListScopesRequest(), ADMIN).scopes == []
