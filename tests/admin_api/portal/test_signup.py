"""Self sign-up on the portal, hostile: off by default (the page and a direct post are
refused), turned on only by an admin through UpdateOrganization (audited), the new user
a subscriber and nothing more whatever the form says, the double-submit CSRF token and
Origin checks, a taken username, weak input."""

from __future__ import annotations

import re

import pytest
from google.protobuf import field_mask_pb2
from starlette.testclient import TestClient

from admin_api.access.caller import Caller, Role
from admin_api.errors import PermissionDenied
from admin_api.services import organizations, users
from portcullis.admin.v1 import admin_pb2, audit_pb2, users_pb2
from tests.admin_api.key_helpers import PUBLIC_URL
from tests.admin_api.portal.conftest import ADMIN, PASSWORD, PortalEnv, sign_in

GOOD_PASSWORD = "tangerine-otter-42"
UPDATE = "portcullis.admin.v1.OrganizationService/UpdateOrganization"


def allow_signup(env: PortalEnv, allowed: bool = True, caller: Caller = ADMIN, organization_id: str = "default"
                 ) -> admin_pb2.Organization:
    return env.portal.dispatcher.call(UPDATE, admin_pb2.UpdateOrganizationRequest(
        id=organization_id, organization=admin_pb2.Organization(self_signup=allowed),
        update_mask=field_mask_pb2.FieldMask(paths=["self_signup"])), caller)


def signup_form(browser: TestClient, org: str = "") -> tuple[str, object]:
    page = browser.get("/portal/signup" + (f"?org={org}" if org else ""))
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1), page


def submit(browser: TestClient, token: str, *, username: str = "newbie", password: str = GOOD_PASSWORD,
           again: str | None = None, headers: dict[str, str] | None = None, **extra: str):
    data = {"csrf": token, "org": "default", "username": username, "password": password,
            "password_again": password if again is None else again, **extra}
    return browser.post("/portal/signup", data=data,
                        headers={"Origin": PUBLIC_URL, "Sec-Fetch-Site": "same-origin", **(headers or {})})


def user_named(env: PortalEnv, username: str, organization_id: str = "default") -> users_pb2.User | None:
    caller = Caller(subject="root", organization_id=organization_id, role=Role.ADMIN)
    found = users.list_users(env.store, users_pb2.ListUsersRequest(page_size=500), caller).users
    return next((user for user in found if user.username == username), None)


def test_sign_up_is_off_by_default_page_and_post_refused(env: PortalEnv) -> None:
    browser = env.browser()
    assert organizations.self_signup_allowed(env.store, "default") is False
    page = browser.get("/portal/signup")
    assert page.status_code == 403 and "does not allow" in page.text
    assert "Create an account" not in browser.get("/portal/apis").text
    # A post that skips the page (with a token and cookie of its own making) is refused by the service.
    browser.cookies.set("portal_signup_csrf", "t" * 43, path="/portal/signup")
    refused = submit(browser, "t" * 43)
    assert refused.status_code == 403
    assert user_named(env, "newbie") is None


def test_only_an_admin_turns_it_on_and_the_change_is_audited(env: PortalEnv) -> None:
    subscriber = Caller(subject="sam", organization_id="default", role=Role.SUBSCRIBER)
    with pytest.raises(PermissionDenied):
        allow_signup(env, caller=subscriber)
    other_admin = Caller(subject="boss", organization_id="acme", role=Role.ADMIN)
    env.portal.dispatcher.call("portcullis.admin.v1.OrganizationService/CreateOrganization",
                               admin_pb2.CreateOrganizationRequest(id="acme"), ADMIN)
    with pytest.raises(PermissionDenied):
        allow_signup(env, caller=other_admin)   # an admin of acme may not open the default organization
    assert allow_signup(env).self_signup is True
    assert organizations.self_signup_allowed(env.store, "default") is True
    records = env.portal.dispatcher.call("portcullis.admin.v1.AuditService/ListAuditRecords",
                                         audit_pb2.ListAuditRecordsRequest(page_size=500), ADMIN).records
    updates = [r for r in records if r.method == UPDATE]
    succeeded, denied = audit_pb2.AuditRecord.SUCCEEDED, audit_pb2.AuditRecord.PERMISSION_DENIED
    assert [(r.subject, r.target_id) for r in updates if r.outcome == succeeded] == [("root", "default")]
    assert [r.subject for r in updates if r.outcome == denied] == ["sam"]


def test_a_visitor_signs_up_as_a_subscriber_only_and_signs_in(env: PortalEnv) -> None:
    allow_signup(env)
    browser = env.browser()
    assert 'href="/portal/signup"' in browser.get("/portal/apis").text
    token, _ = signup_form(browser)
    made = submit(browser, token, roles="admin", role="admin")   # extra fields are ignored
    assert made.status_code == 201 and "Account created" in made.text
    user = user_named(env, "newbie")
    assert user is not None and list(user.roles) == ["subscriber"]
    assert GOOD_PASSWORD not in made.text
    assert sign_in(env.browser(), "newbie", GOOD_PASSWORD).status_code == 303
    records = env.portal.dispatcher.call("portcullis.admin.v1.AuditService/ListAuditRecords",
                                         audit_pb2.ListAuditRecordsRequest(page_size=500), ADMIN).records
    signup = [r for r in records if r.method == users.SIGNUP_METHOD]
    assert [(r.subject, r.target_kind, r.target_id, r.credential_kind, list(r.roles)) for r in signup] == [
        ("newbie", "user", user.id, "self_signup", ["subscriber"])]


def test_the_form_needs_its_own_token_cookie_and_origin(env: PortalEnv) -> None:
    allow_signup(env)
    browser = env.browser()
    token, _ = signup_form(browser)
    assert submit(browser, "forged-" + token).status_code == 403
    assert submit(browser, "").status_code == 403
    assert submit(browser, token, headers={"Origin": "https://evil.example"}).status_code == 403
    assert submit(browser, token, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert submit(browser, token, headers={"Origin": "null"}).status_code == 403
    # The token without its cookie (another browser) is refused too.
    assert submit(env.browser(), token).status_code == 403
    assert user_named(env, "newbie") is None
    cookie = next(value for name, value in browser.get("/portal/signup").headers.multi_items()
                  if name == "set-cookie" and value.startswith("portal_signup_csrf="))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "path=/portal/signup" in cookie.lower()


def test_a_taken_username_is_refused_and_the_first_user_keeps_everything(env: PortalEnv) -> None:
    env.user("sam", "subscriber", "publisher")
    allow_signup(env)
    browser = env.browser()
    token, _ = signup_form(browser)
    taken = submit(browser, token, username="sam")
    assert taken.status_code == 409 and "taken" in taken.text
    assert sorted(user_named(env, "sam").roles) == ["publisher", "subscriber"]
    assert sign_in(env.browser(), "sam", PASSWORD).status_code == 303   # the old password still works


@pytest.mark.parametrize(("username", "password", "again", "says"), [
    ("newbie", "short", None, "10 to 1024"),
    ("newbie", "x" * 1025, None, "10 to 1024"),
    ("newbie", "newbie-password!", None, "too easy"),          # contains the username
    ("newbie", "password123", None, "too easy"),               # well known
    ("newbie", "abababababab", None, "too easy"),              # few distinct characters
    ("newbie", GOOD_PASSWORD, GOOD_PASSWORD + "x", "differ"),
    ("x", GOOD_PASSWORD, None, "3 to 64"),
    ("<script>alert(1)</script>", GOOD_PASSWORD, None, "3 to 64"),
    ("a" * 65, GOOD_PASSWORD, None, "3 to 64"),
    ("new bie", GOOD_PASSWORD, None, "3 to 64"),
    ("", GOOD_PASSWORD, None, "3 to 64"),
])
def test_weak_or_bad_input_is_refused_with_the_reason(env: PortalEnv, username: str, password: str,
                                                      again: str | None, says: str) -> None:
    allow_signup(env)
    browser = env.browser()
    token, _ = signup_form(browser)
    answer = submit(browser, token, username=username, password=password, again=again)
    assert answer.status_code == 400 and says in answer.text
    assert "<script>alert(1)</script>" not in answer.text     # echoed escaped, if at all
    assert password not in answer.text or len(password) < 6
    assert user_named(env, username) is None


def test_turning_it_off_again_closes_the_form(env: PortalEnv) -> None:
    allow_signup(env)
    browser = env.browser()
    token, _ = signup_form(browser)
    allow_signup(env, False)
    assert submit(browser, token).status_code == 403
    assert user_named(env, "newbie") is None
