"""Signing in and out of the portal: authorization code with PKCE at the resident key
manager, the session cookie's attributes, subscribers only, sign-out revokes the token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from admin_api.portal.client import CALLBACK_PATH, PORTAL_CLIENT_ID
from admin_api.services import applications
from portcullis.admin.v1 import admin_pb2
from admin_api.portal.web import SESSION_COOKIE
from tests.admin_api.key_helpers import PUBLIC_URL
from tests.admin_api.portal.conftest import ADMIN, PortalEnv, csrf_of, sign_in


def test_the_authorization_request_is_a_public_client_with_pkce_s256(env: PortalEnv) -> None:
    start = env.browser().get("/portal/signin")
    location = urlsplit(start.headers["location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert location.path == "/oauth2/authorize"
    assert query["client_id"] == env.portal.client_id
    assert query["redirect_uri"] == PUBLIC_URL + CALLBACK_PATH
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert "code_verifier" not in query


def test_a_subscriber_signs_in_and_gets_an_httponly_lax_session_cookie(env: PortalEnv) -> None:
    env.user("sam", "subscriber")
    browser = env.browser()
    answer = sign_in(browser, "sam")
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/apis"
    cookie = next(value for name, value in answer.headers.multi_items()
                  if name == "set-cookie" and value.startswith(SESSION_COOKIE + "="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower() and "path=/portal" in cookie.lower()
    page = browser.get("/portal/apis")
    assert page.status_code == 200 and "sam" in page.text
    token = env.portal.sessions.get(browser.cookies[SESSION_COOKIE]).access_token
    assert token not in page.text and token not in cookie


def test_a_user_without_the_subscriber_role_is_refused_and_gets_no_session(env: PortalEnv) -> None:
    env.user("pat", "publisher")
    browser = env.browser()
    answer = sign_in(browser, "pat")
    assert answer.status_code == 403 and "subscriber role" in answer.text
    assert SESSION_COOKIE not in browser.cookies


def test_a_callback_in_another_browser_is_refused(env: PortalEnv) -> None:
    env.user("sam", "subscriber")
    victim, attacker = env.browser(), env.browser()
    start = attacker.get("/portal/signin")   # the attacker's state, sent to the victim's browser
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    answer = victim.get(f"/portal/callback?code=whatever&state={state}")
    assert answer.status_code == 400 and "not started in this browser" in answer.text
    assert SESSION_COOKIE not in victim.cookies


def test_a_state_works_once(env: PortalEnv) -> None:
    env.user("sam", "subscriber")
    browser = env.browser()
    assert sign_in(browser, "sam").status_code == 303
    again = browser.get("/portal/callback?code=x&state=y")
    assert again.status_code == 400


def test_sign_out_needs_the_csrf_token_then_revokes_the_token(env: PortalEnv) -> None:
    env.user("sam", "subscriber")
    browser = env.browser()
    sign_in(browser, "sam")
    page = browser.get("/portal/apis")
    session_id = browser.cookies[SESSION_COOKIE]
    token = env.portal.sessions.get(session_id).access_token
    refused = browser.post("/portal/signout", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert env.portal.sessions.get(session_id) is not None
    out = browser.post("/portal/signout", data={"csrf": csrf_of(page)})
    assert out.status_code == 200 and "Signed out" in out.text
    assert env.portal.sessions.get(session_id) is None
    assert env.browser().get("/v1/applications", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_portal_client_is_built_in_public_with_pkce_and_in_no_admin_list(env: PortalEnv) -> None:
    client = env.portal.resident.server.query_client(PORTAL_CLIENT_ID)
    assert client is not None and client.public and client.pkce_mandatory
    assert client.grant_types == ("authorization_code",)
    assert client.check_redirect_uri(PUBLIC_URL + CALLBACK_PATH)
    assert not client.check_redirect_uri("https://evil.example" + CALLBACK_PATH)
    assert applications.list_applications(env.store, admin_pb2.ListApplicationsRequest(), ADMIN).applications == []


def test_a_portal_token_is_refused_by_the_token_endpoint_for_other_grants(env: PortalEnv) -> None:
    env.user("sam", "subscriber")
    answer = env.browser().post("/oauth2/token", data={"grant_type": "password", "username": "sam",
                                                       "password": "correct horse battery",
                                                       "client_id": PORTAL_CLIENT_ID})
    assert answer.status_code in (400, 401) and "access_token" not in answer.text


def test_a_user_of_another_organization_signs_in_there_and_sees_only_its_objects(env: PortalEnv) -> None:
    from admin_api.access.caller import Caller, Role
    from admin_api.services import organizations, users
    from portcullis.admin.v1 import users_pb2
    from tests.admin_api.conftest import published_api

    organizations.create_organization(env.store, admin_pb2.CreateOrganizationRequest(id="acme"), ADMIN)
    acme_admin = Caller(subject="boss", organization_id="acme", role=Role.ADMIN)
    users.create_user(env.store, users_pb2.CreateUserRequest(user=users_pb2.User(
        username="ann", password="correct horse battery", roles=["subscriber"])), acme_admin)
    published_api(env.store, acme_admin, name="AcmeOnly", context="/acme-only")
    published_api(env.store, name="DefaultOnly", context="/default-only")
    browser = env.browser()
    start = browser.get("/portal/signin?org=acme")
    assert parse_qs(urlsplit(start.headers["location"]).query)["client_id"] == ["portcullis-portal.acme"]
    # ann is no user of the default organization: signing in there fails at the login form.
    with pytest.raises(AssertionError):
        sign_in(env.browser(), "ann")
    answer = sign_in(browser, "ann", org="acme")
    assert answer.status_code == 303, answer.text
    session = env.portal.sessions.get(browser.cookies[SESSION_COOKIE])
    assert session.organization_id == "acme" and session.client_id == "portcullis-portal.acme"
    page = browser.get("/portal/apis")
    assert "AcmeOnly" in page.text and "DefaultOnly" not in page.text
    made = browser.post("/portal/applications", data={"csrf": csrf_of(page), "name": "AnnApp"})
    assert made.status_code == 303
    assert [a.name for a in applications.list_applications(
        env.store, admin_pb2.ListApplicationsRequest(), acme_admin).applications] == ["AnnApp"]
    out = browser.post("/portal/signout", data={"csrf": csrf_of(page)})
    assert out.status_code == 200
    assert env.browser().get("/v1/applications", headers={"Authorization": f"Bearer {session.access_token}"}
                             ).status_code == 401


def test_an_unknown_organization_or_a_bad_id_is_refused(env: PortalEnv) -> None:
    for org in ("nowhere", "Bad_Id", "x" * 200, "../default"):
        answer = env.browser().get("/portal/signin", params={"org": org})
        assert answer.status_code == 404, org
    assert env.portal.resident.server.query_client("portcullis-portal.nowhere") is None
    assert env.portal.resident.server.query_client("portcullis-portal.") is None
