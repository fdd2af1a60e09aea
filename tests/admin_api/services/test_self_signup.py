"""The organization's self sign-up setting and users.sign_up on SQLite and PostgreSQL
(migration 0013 adds the column, off for every organization)."""

from __future__ import annotations

import pytest
from google.protobuf import field_mask_pb2

from admin_api.access.caller import Caller
from admin_api.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from admin_api.services import organizations, users
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2, users_pb2
from tests.admin_api.conftest import ADMIN

pytestmark = pytest.mark.both_databases


def set_signup(store: Store, allowed: bool, caller: Caller = ADMIN, organization_id: str = "default",
               ) -> admin_pb2.Organization:
    return organizations.update_organization(store, admin_pb2.UpdateOrganizationRequest(
        id=organization_id, organization=admin_pb2.Organization(self_signup=allowed, name="ignored"),
        update_mask=field_mask_pb2.FieldMask(paths=["self_signup"])), caller)


def test_off_for_every_organization_until_an_admin_turns_it_on(store: Store, acme: Caller) -> None:
    listed = organizations.list_organizations(store, admin_pb2.ListOrganizationsRequest(), ADMIN).organizations
    assert {o.id: o.self_signup for o in listed} == {"default": False, "acme": False}
    with pytest.raises(PermissionDenied):
        users.sign_up(store, "default", "newbie", "tangerine-otter-42")
    changed = set_signup(store, True, acme, "acme")
    assert changed.self_signup is True and changed.name == "Acme"   # name was not in the mask
    assert organizations.self_signup_allowed(store, "acme") and not organizations.self_signup_allowed(store, "default")
    with pytest.raises(PermissionDenied):
        set_signup(store, True, acme, "default")
    with pytest.raises(NotFound):
        set_signup(store, True, ADMIN, "nowhere")
    with pytest.raises(InvalidArgument):
        organizations.update_organization(store, admin_pb2.UpdateOrganizationRequest(
            id="acme", update_mask=field_mask_pb2.FieldMask(paths=["id"])), acme)


def test_sign_up_makes_a_subscriber_of_that_organization_only(store: Store, acme: Caller) -> None:
    set_signup(store, True, acme, "acme")
    made = users.sign_up(store, "acme", "newbie", "tangerine-otter-42")
    assert made.organization_id == "acme" and list(made.roles) == ["subscriber"]
    with pytest.raises(AlreadyExists):
        users.sign_up(store, "acme", "newbie", "another-otter-43")
    with pytest.raises(PermissionDenied):
        users.sign_up(store, "default", "newbie2", "tangerine-otter-42")
    assert users.authenticate_user(store, "acme", "newbie", "tangerine-otter-42") is not None
    assert [u.username for u in users.list_users(store, users_pb2.ListUsersRequest(), ADMIN).users] == []
