"""The consumer's pages in-process: applications, subscriptions, keys, secrets, test
tokens and API keys through the portal's forms; the security headers, CSRF on every
form, escaping of hostile names, someone else's objects."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from admin_api.portal.web import CSP
from admin_api.services import api_keys, applications, subscriptions
from admin_api.access.caller import Caller, Role
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import published_api
from tests.admin_api.portal.conftest import ADMIN, PortalEnv, csrf_of, sign_in

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def values_shown(page: httpx.Response) -> list[str]:
    return re.findall(r'readonly value="([^"]+)"', page.text)


def post(browser: TestClient, url: str, **data: str) -> httpx.Response:
    page = browser.get("/portal/applications")
    return browser.post(url, data={"csrf": csrf_of(page), **data})


def test_every_page_carries_a_strict_csp_and_no_store(env: PortalEnv, signed_in: TestClient) -> None:
    for path in ("/portal/apis", "/portal/applications", "/portal/nope"):
        answer = signed_in.get(path)
        assert answer.headers["content-security-policy"] == CSP
        assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "same-origin"


def test_signed_out_visitors_are_asked_to_sign_in(env: PortalEnv) -> None:
    answer = env.browser().get("/portal/applications")
    assert answer.status_code == 200 and 'href="/portal/signin"' in answer.text
    refused = env.browser().post("/portal/applications", data={"name": "x"})
    assert refused.status_code == 401


def test_the_whole_consumer_journey_through_the_forms(env: PortalEnv, signed_in: TestClient) -> None:
    api = published_api(env.store, description="Pizzas", resources=[admin_pb2.Resource(method="GET", path="/menu")])
    catalogue = signed_in.get("/portal/apis?q=pizza")
    assert "PizzaShack" in catalogue.text and api.base_path in catalogue.text
    assert "No API matches" in signed_in.get("/portal/apis?q=nothing-like-it").text

    empty = signed_in.get("/portal/applications")
    assert "No applications yet: create one" in empty.text
    made = post(signed_in, "/portal/applications", name="Mobile", tier="Unlimited")
    assert made.status_code == 303
    app_path = made.headers["location"]
    app_id = app_path.rsplit("/", 1)[1]

    subscribed = post(signed_in, f"/portal/apis/{api.id}/subscribe", application_id=app_id, tier="Gold")
    assert subscribed.status_code == 303
    listed = subscriptions.list_subscriptions(env.store, admin_pb2.ListSubscriptionsRequest(api_id=api.id), ADMIN)
    assert [(s.application_id, s.tier) for s in listed.subscriptions] == [(app_id, "Gold")]

    post(signed_in, f"{app_path}/keys", environment="PRODUCTION")
    page = signed_in.get(app_path)
    secret = values_shown(page)
    assert len(secret) == 1 and secret[0].startswith("pcsec_")
    assert secret[0] not in signed_in.get(app_path).text, "a consumer secret is shown once"
    key_id = re.search(rf"{app_path}/keys/([^/]+)/token", page.text).group(1)

    post(signed_in, f"{app_path}/keys/{key_id}/token", consumer_secret=secret[0], scope="")
    token_page = signed_in.get(app_path)
    assert "Access token" in token_page.text and values_shown(token_page)[0].startswith("eyJ")

    post(signed_in, f"{app_path}/keys/{key_id}/token", consumer_secret="wrong", scope="")
    assert "The token endpoint refused" in signed_in.get(app_path).text

    post(signed_in, f"/portal/apis/{api.id}/api-keys", name="web", environment="PRODUCTION",
         allowed_ips="127.0.0.1\n10.0.0.0/8", application_id=app_id)
    api_page = signed_in.get(f"/portal/apis/{api.id}")
    value = values_shown(api_page)[0]
    assert value.startswith("pck_")
    keys = api_keys.list_api_keys(env.store, admin_pb2.ListApiKeysRequest(api_id=api.id), ADMIN).api_keys
    assert [(k.name, list(k.allowed_ips), k.application_id) for k in keys] == [("web", ["127.0.0.1", "10.0.0.0/8"], app_id)]
    post(signed_in, f"/portal/apis/{api.id}/api-keys/{keys[0].id}/revoke")
    keys = api_keys.list_api_keys(env.store, admin_pb2.ListApiKeysRequest(api_id=api.id, include_revoked=True),
                                  ADMIN).api_keys
    assert keys[0].status == admin_pb2.ApiKey.REVOKED

    tried = post(signed_in, f"/portal/apis/{api.id}/try", method="GET", path="/menu", kind="api_key",
                 credential=value)
    assert tried.status_code == 200 and "gateway_unreachable" in tried.text
    assert value not in tried.text, "Try it does not echo the credential"

    post(signed_in, f"{app_path}/delete")
    assert applications.list_applications(env.store, admin_pb2.ListApplicationsRequest(owner="sam"),
                                          ADMIN).applications == []


def test_admin_errors_come_back_on_the_form_page(env: PortalEnv, signed_in: TestClient) -> None:
    api = published_api(env.store)
    made = post(signed_in, "/portal/applications", name="Mobile", tier="Unlimited")
    app_id = made.headers["location"].rsplit("/", 1)[1]
    answer = post(signed_in, f"/portal/apis/{api.id}/subscribe", application_id=app_id, tier="NoSuchTier")
    assert answer.status_code == 303 and answer.headers["location"] == f"/portal/apis/{api.id}"
    page = signed_in.get(answer.headers["location"])
    assert 'role="alert"' in page.text and "NoSuchTier" in page.text


def test_hostile_names_and_descriptions_are_escaped(env: PortalEnv, signed_in: TestClient) -> None:
    api = published_api(env.store, description=HOSTILE)
    # A hostile name is refused, and the refusal (which quotes it) is escaped too.
    refused = post(signed_in, "/portal/applications", name=HOSTILE, tier="Unlimited")
    pages = [signed_in.get(refused.headers["location"])]
    made = post(signed_in, "/portal/applications", name="Mobile", description=HOSTILE, tier="Unlimited")
    pages.append(signed_in.get(made.headers["location"]))
    pages += [signed_in.get(path) for path in ("/portal/apis", f"/portal/apis/{api.id}", "/portal/applications")]
    for page in pages:
        path = page.url.path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        assert "&lt;script&gt;" in page.text, path


def test_someone_elses_application_is_not_found(env: PortalEnv, signed_in: TestClient) -> None:
    other = Caller(subject="olga", organization_id="default", roles=frozenset({Role.SUBSCRIBER}),
                   own_resources_only=True)
    theirs = applications.create_application(env.store, admin_pb2.CreateApplicationRequest(name="Theirs"), other)
    assert signed_in.get(f"/portal/applications/{theirs.id}").status_code == 404
    answer = post(signed_in, f"/portal/applications/{theirs.id}/delete")
    assert answer.status_code == 303
    assert applications.get_application(env.store, admin_pb2.GetApplicationRequest(id=theirs.id), ADMIN).name == "Theirs"
    assert "Theirs" not in signed_in.get("/portal/applications").text


def _post_routes(env: PortalEnv) -> list[str]:
    paths = []
    for route in env.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/portal") and "POST" in (route.methods or ()):
            paths.append(re.sub(r"\{[^}]+\}", "x", route.path))
    return paths


def test_every_form_refuses_a_missing_or_forged_csrf_token_and_another_origin(env: PortalEnv,
                                                                              signed_in: TestClient) -> None:
    routes = _post_routes(env)
    assert len(routes) == 15   # sign-out, sign-up, 5 API forms, 8 application forms
    csrf = csrf_of(signed_in.get("/portal/apis"))
    for path in routes:
        for data, headers in (({}, {}), ({"csrf": "forged"}, {}),
                              ({"csrf": csrf}, {"Origin": "https://evil.example"}),
                              ({"csrf": csrf}, {"Sec-Fetch-Site": "cross-site"})):
            answer = signed_in.post(path, data=data, headers=headers)
            assert answer.status_code == 403, (path, data, headers, answer.status_code)


def test_key_managers_the_user_may_use_are_offered_and_a_refusal_is_explained(env: PortalEnv,
                                                                               signed_in: TestClient) -> None:
    from html import unescape

    from tests.admin_api.key_helpers import external_km

    gold_only = external_km(env.store, ADMIN, name="GoldIdp", display_name="Gold IdP",
                            key_generation_allowed_roles=["gold"])
    other = external_km(env.store, ADMIN, name="Other", issuer="https://other.example.com",
                        jwks_uri="https://other.example.com/certs")
    made = post(signed_in, "/portal/applications", name="Mobile", tier="Unlimited")
    app_path = made.headers["location"]
    page = signed_in.get(app_path)
    text = unescape(page.text)
    assert re.search(rf'<option value="{gold_only.id}" disabled>Gold IdP \(keycloak\): not for you</option>', text)
    assert re.search(rf'<option value="{other.id}">Other \(keycloak\)</option>', text)
    assert "Gold IdP: key manager 'GoldIdp' allows key generation only to owners with a role of gold; " \
           "owner 'sam' has none." in text
    # Posting the refused key manager anyway: the service refuses, and the page says why.
    post(signed_in, f"{app_path}/keys", environment="PRODUCTION", key_manager_id=gold_only.id)
    after = unescape(signed_in.get(app_path).text)
    assert re.search(r'class="notice error"[^>]*>key manager \'GoldIdp\' allows key generation only', after)
    assert "No production keys yet" in after
