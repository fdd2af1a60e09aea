"""Users of the resident key manager and the scopes bound to their roles.

Passwords are write-only and stored as argon2id hashes (argon2-cffi). A scope bound to
no role is granted to anyone who asks; a scope that is not defined is never granted.
Users and scopes never reach authz_server (tokens carry the granted scopes), so they
write no change records.

`authenticate_user`, `roles_of` and `entitled_scopes` are what the resident OAuth2
server calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from google.protobuf.empty_pb2 import Empty
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.access.caller import Caller, Credential, Role
from admin_api.audit import log as audit_log
from admin_api.db import models
from admin_api.db.types import utcnow
from admin_api.errors import AlreadyExists, InvalidArgument, PermissionDenied
from admin_api.services import failed_logins, isolation, masks, paging, validation
from admin_api.store.unit_of_work import Store, new_id
from admin_api.views.users import scope_pb, user_pb
from portcullis.admin.v1 import users_pb2
from portcullis_shared import scopes

MIN_PASSWORD = 8
SIGNUP_METHOD = "portal/SignUp"   # the audit record's method for a self sign-up
MAX_PASSWORD = 1024
# RFC 6749 scope-token: printable ASCII except space, '"' and '\'.
SCOPE_RE = re.compile(r'[\x21\x23-\x5b\x5d-\x7e]{1,200}')
USER_MUTABLE = frozenset({"password", "roles"})
USER_IMMUTABLE = frozenset({"id", "organization_id", "username", "created_at", "updated_at"})
SCOPE_MUTABLE = frozenset({"description", "roles"})
SCOPE_IMMUTABLE = frozenset({"id", "organization_id", "name", "created_at"})

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that an unknown username costs
# about as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("portcullis: no such user")


@dataclass(frozen=True)
class UserIdentity:
    user_id: str
    username: str
    roles: tuple[str, ...]


def authenticate_user(store: Store, organization_id: str, username: str, password: str, *,
                      via: str = failed_logins.LOGIN_FORM) -> UserIdentity | None:
    """The user whose password this is; None for an unknown user, a wrong password or an
    account locked out after too many failures (the same None: a guess is not confirmed)."""
    return failed_logins.check(store, organization_id=organization_id, subject=username, credential=Credential.PASSWORD,
                               via=via, target_kind="user",
                               verify=lambda: _verify_password(store, organization_id, username, password))


def _verify_password(store: Store, organization_id: str, username: str, password: str) -> UserIdentity | None:
    with store.read() as session:
        row = _by_username(session, organization_id, username)
    stored = row.password_hash if row is not None else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return UserIdentity(user_id=row.id, username=row.username, roles=tuple(row.roles))


def roles_of(store: Store, organization_id: str, username: str) -> tuple[str, ...]:
    """The roles of a user of the organization; none when there is no such user."""
    with store.read() as session:
        return roles_in(session, organization_id, username)


def roles_in(session: Session, organization_id: str, username: str) -> tuple[str, ...]:
    row = _by_username(session, organization_id, username)
    return tuple(row.roles) if row is not None else ()


def entitled_scopes(store: Store, organization_id: str, roles: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The requested scopes these roles are entitled to, in request order, without duplicates.
    Reserved (`portcullis:`) scopes are never entitled by a definition: the token
    endpoint adds portcullis:admin for first-party clients itself."""
    wanted = [name for name in dict.fromkeys(requested) if not scopes.is_reserved(name)]
    if not wanted:
        return []
    held = set(roles)
    with store.read() as session:
        bound = {row.name: row.roles for row in session.scalars(select(models.Scope).where(
            models.Scope.organization_id == organization_id, models.Scope.name.in_(wanted)))}
    return [name for name in wanted if name in bound and (not bound[name] or held.intersection(bound[name]))]


def create_user(store: Store, request: users_pb2.CreateUserRequest, caller: Caller) -> users_pb2.User:
    given = request.user
    organization_id = isolation.organization(given.organization_id, caller)
    username = validation.subject(validation.required(given.username, "user.username"), "user.username")
    password_hash = _hash(given.password, "user.password")
    roles = validation.roles(list(given.roles), "user.roles")
    now = utcnow()
    with store.write() as writer:
        twin = _by_username(writer.session, organization_id, username)
        if twin is not None:
            raise AlreadyExists(f"a user named {username!r} already exists (id {twin.id!r})", field="user.username")
        row = models.User(id=new_id(), organization_id=organization_id, username=username,
                          password_hash=password_hash, roles=roles, created_at=now, updated_at=now)
        writer.session.add(row)
        return user_pb(row)


SIGNUP_ROLE = "subscriber"
SIGNUP_MIN_PASSWORD = 10
SIGNUP_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+-]{2,63}")
# Passwords too well known to take, whatever their length (lower case, compared so).
_COMMON_PASSWORDS = frozenset({
    "password123", "password1234", "1234567890", "12345678910", "qwertyuiop", "0123456789", "iloveyou12",
    "abcdefghij", "passw0rd123", "letmein123", "welcome123", "administrator", "changeme123", "qwerty1234",
    "1q2w3e4r5t", "asdfghjkl1", "portcullis", "portcullis1", "subscriber",
})


def sign_up(store: Store, organization_id: str, username: str, password: str) -> users_pb2.User:
    """Self sign-up on the developer portal: a new user of the organization with the
    subscriber role and no other, when the organization allows it (PermissionDenied
    otherwise, checked in the transaction that creates the user). Audited as
    `portal/SignUp` by the new user, in that transaction."""
    if not SIGNUP_USERNAME_RE.fullmatch(username):
        raise InvalidArgument("username: 3 to 64 letters, digits or '@._+-', starting with a letter or digit",
                              field="username")
    if not SIGNUP_MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(f"password: {SIGNUP_MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    lowered = password.lower()
    if username.lower() in lowered or lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        raise InvalidArgument("password: too easy to guess (it contains the username, is a well-known password "
                              "or repeats a few characters); choose another", field="password")
    password_hash = _hasher.hash(password)
    now = utcnow()
    who = Caller(subject=username, organization_id=organization_id, roles=frozenset({Role.SUBSCRIBER}),
                 credential=Credential.SELF_SIGNUP)
    with audit_log.recording(audit_log.Entry(who, SIGNUP_METHOD, "user")), store.write() as writer:
        organization = writer.session.get(models.Organization, organization_id)
        if organization is None or not organization.self_signup:
            raise PermissionDenied("this organization does not allow self sign-up: ask one of its admins for an "
                                   "account")
        if _by_username(writer.session, organization_id, username) is not None:
            raise AlreadyExists(f"the username {username!r} is taken: choose another", field="username")
        row = models.User(id=new_id(), organization_id=organization_id, username=username,
                          password_hash=password_hash, roles=[SIGNUP_ROLE], created_at=now, updated_at=now)
        writer.session.add(row)
        return user_pb(row)


def get_user(store: Store, request: users_pb2.GetUserRequest, caller: Caller) -> users_pb2.User:
    with store.read() as session:
        return user_pb(isolation.get(session, models.User, request.id, caller))


def list_users(store: Store, request: users_pb2.ListUsersRequest, caller: Caller) -> users_pb2.ListUsersResponse:
    size = paging.page_size(request.page_size)
    statement = select(models.User).where(models.User.organization_id == caller.organization_id)
    with store.read() as session:
        rows, token = paging.paginate(session, statement, models.User, size=size, token=request.page_token,
                                      filters=["users", caller.organization_id])
        return users_pb2.ListUsersResponse(users=[user_pb(row) for row in rows], next_page_token=token)


def update_user(store: Store, request: users_pb2.UpdateUserRequest, caller: Caller) -> users_pb2.User:
    paths = masks.paths(request.update_mask, mutable=USER_MUTABLE, immutable=USER_IMMUTABLE)
    password_hash = _hash(request.user.password, "user.password") if "password" in paths else None
    roles = validation.roles(list(request.user.roles), "user.roles") if "roles" in paths else None
    with store.write() as writer:
        row = isolation.get(writer.session, models.User, request.id, caller)
        if password_hash is not None:
            row.password_hash = password_hash
        if roles is not None:
            row.roles = roles
        row.updated_at = utcnow()
        return user_pb(row)


def delete_user(store: Store, request: users_pb2.DeleteUserRequest, caller: Caller) -> Empty:
    with store.write() as writer:
        writer.session.delete(isolation.get(writer.session, models.User, request.id, caller))
    return Empty()


def create_scope(store: Store, request: users_pb2.CreateScopeRequest, caller: Caller) -> users_pb2.Scope:
    given = request.scope
    organization_id = isolation.organization(given.organization_id, caller)
    name = _scope_name(given.name, "scope.name")
    description = validation.description(given.description, "scope.description")
    roles = validation.roles(list(given.roles), "scope.roles")
    now = utcnow()
    with store.write() as writer:
        twin = writer.session.scalars(select(models.Scope).where(
            models.Scope.organization_id == organization_id, models.Scope.name == name)).first()
        if twin is not None:
            raise AlreadyExists(f"a scope named {name!r} already exists (id {twin.id!r})", field="scope.name")
        row = models.Scope(id=new_id(), organization_id=organization_id, name=name, description=description,
                           roles=roles, created_at=now, updated_at=now)
        writer.session.add(row)
        return scope_pb(row)


def list_scopes(store: Store, request: users_pb2.ListScopesRequest, caller: Caller) -> users_pb2.ListScopesResponse:
    with store.read() as session:
        rows = session.scalars(select(models.Scope).where(models.Scope.organization_id == caller.organization_id)
                               .order_by(models.Scope.name))
        return users_pb2.ListScopesResponse(scopes=[scope_pb(row) for row in rows])


def update_scope(store: Store, request: users_pb2.UpdateScopeRequest, caller: Caller) -> users_pb2.Scope:
    paths = masks.paths(request.update_mask, mutable=SCOPE_MUTABLE, immutable=SCOPE_IMMUTABLE)
    with store.write() as writer:
        row = isolation.get(writer.session, models.Scope, request.id, caller)
        if "description" in paths:
            row.description = validation.description(request.scope.description, "scope.description")
        if "roles" in paths:
            row.roles = validation.roles(list(request.scope.roles), "scope.roles")
        row.updated_at = utcnow()
        return scope_pb(row)


def delete_scope(store: Store, request: users_pb2.DeleteScopeRequest, caller: Caller) -> Empty:
    with store.write() as writer:
        writer.session.delete(isolation.get(writer.session, models.Scope, request.id, caller))
    return Empty()


def _by_username(session: Session, organization_id: str, username: str) -> models.User | None:
    return session.scalars(select(models.User).where(models.User.organization_id == organization_id,
                                                     models.User.username == username)).first()


def _hash(password: str, field: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(f"{field} must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", field=field)
    return _hasher.hash(password)


def _scope_name(value: str, field: str) -> str:
    validation.required(value, field)
    if not SCOPE_RE.fullmatch(value):
        raise InvalidArgument(f"{field} {value!r} must be 1 to 200 printable characters without spaces, "
                              "'\"' or '\\' (RFC 6749 scope token)", field=field)
    if scopes.is_reserved(value):
        raise InvalidArgument(f"{field} {value!r}: scopes starting {scopes.RESERVED_PREFIX!r} are Portcullis's "
                              f"own ({scopes.ADMIN_SCOPE} is granted to first-party clients only)", field=field)
    return value
