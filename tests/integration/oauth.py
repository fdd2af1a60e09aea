"""OAuth2 building blocks for the integration tests: APIs secured by OAuth2, application
keys at a key manager, tokens from the resident key manager's endpoints (real HTTP, as
a client application would), the fake IdP registered as an external key manager, and
RFC 6750 challenge assertions."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.integration.conftest import LiveMesh
from tests.integration.endpoints import http_client
from tests.fake_idp import OPAQUE_TOKEN_PATTERN, FakeIdp
from tests.integration.gateway import assert_denied, describe
from tests.integration.scenario import PIZZASHACK_RESOURCES, PublishedApi, create_api, unique

RESIDENT_NAME = "Resident Key Manager"
CALLBACK_URL = "http://127.0.0.1:9/callback"  # never fetched: the tests read the redirect


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def oauth_api(live: LiveMesh, *, allowed_key_managers: list[str] | None = None,
              resources: list[dict[str, Any]] | None = None, **fields: Any) -> PublishedApi:
    """A published API secured by OAuth2 only (empty allow-list: every key manager)."""
    security = {"oauth2": {"allowed_key_managers": list(allowed_key_managers or [])}}
    return create_api(live, security=security, resources=resources or PIZZASHACK_RESOURCES, **fields)


def call(api: PublishedApi, token: str, subpath: str = "/menu") -> httpx.Response:
    return api.get(subpath, headers=bearer(token))


# --- RFC 6750 denials --------------------------------------------------------------------
def assert_token_denied(response: httpx.Response, status: int, code: str) -> None:
    """A token denial: status, JSON code, and on 401 the invalid_token challenge."""
    assert_denied(response, status, code)
    if status == 401:
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.startswith('Bearer realm="portcullis"'), describe(response) + f" challenge={challenge!r}"
        assert 'error="invalid_token"' in challenge, describe(response) + f" challenge={challenge!r}"


def assert_insufficient_scope(response: httpx.Response, needed: list[str]) -> None:
    assert_denied(response, 403, "insufficient_scope")
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith('Bearer realm="portcullis"'), f"challenge={challenge!r}"
    assert 'error="insufficient_scope"' in challenge, f"challenge={challenge!r}"
    assert f'scope="{" ".join(needed)}"' in challenge, f"challenge={challenge!r}"


# --- the resident key manager ------------------------------------------------------------
def public_url(live: LiveMesh) -> str:
    return live.admin_url


def oauth_http(live: LiveMesh) -> httpx.Client:
    """A client of the resident OAuth2 endpoints: no admin credential, no redirects."""
    return http_client(live.settings, base_url=public_url(live), follow_redirects=False)


@dataclass
class AppKey:
    """An application's OAuth2 key: consumer key, one consumer secret, its application."""

    application: dict[str, Any]
    key: dict[str, Any]
    consumer_secret: str
    secret: dict[str, Any]

    @property
    def consumer_key(self) -> str:
        return str(self.key["consumer_key"])

    @property
    def id(self) -> str:
        return str(self.key["id"])


def generate_key(live: LiveMesh, application: dict[str, Any], *, environment: str = "PRODUCTION",
                 key_manager_id: str | None = None, **fields: Any) -> AppKey:
    body: dict[str, Any] = {"environment": environment, **fields}
    if key_manager_id:
        body["key_manager_id"] = key_manager_id
    answer = live.admin.generate_application_key(application["id"], **body)
    return AppKey(application, answer["key"], answer.get("consumer_secret", ""), answer.get("secret", {}))


def token_response(live: LiveMesh, consumer_key: str, consumer_secret: str | None, **form: str) -> httpx.Response:
    """POST /oauth2/token with client_secret_basic (no secret: a public client's client_id)."""
    with oauth_http(live) as http:
        if consumer_secret is None:
            return http.post("/oauth2/token", data={"client_id": consumer_key, **form})
        return http.post("/oauth2/token", data=form, auth=(consumer_key, consumer_secret))


def client_credentials(live: LiveMesh, key: AppKey, scope: str | None = None, *, secret: str | None = None) -> dict[str, Any]:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    response = token_response(live, key.consumer_key, secret or key.consumer_secret, **form)
    assert response.status_code == 200, describe(response)
    answer: dict[str, Any] = response.json()
    assert answer["token_type"].lower() == "bearer"
    return answer


def resident_token(live: LiveMesh, key: AppKey, scope: str | None = None) -> str:
    return str(client_credentials(live, key, scope)["access_token"])


def revoke(live: LiveMesh, key: AppKey, token: str) -> None:
    """RFC 7009 at the resident key manager."""
    with oauth_http(live) as http:
        response = http.post("/oauth2/revoke", data={"token": token}, auth=(key.consumer_key, key.consumer_secret))
    assert response.status_code == 200, describe(response)


def subscribed_app(live: LiveMesh, api: PublishedApi, **application: Any) -> dict[str, Any]:
    app = live.admin.create_application(unique("oauth-app"), **application)
    live.admin.subscribe(app["id"], api.id)
    return app


# --- the fake IdP as an external key manager ---------------------------------------------
def register_external(live: LiveMesh, idp: FakeIdp, *, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """The fake IdP as an OIDC key manager, configured from its discovery URL."""
    body: dict[str, Any] = {
        "name": name or unique("fake-idp"),
        "display_name": "Fake IdP",
        "type": "OIDC",
        "enabled": True,
        "discovery_url": idp.discovery_url,
        "introspection_client_id": idp.introspection_client.client_id,
        "introspection_client_secret": idp.introspection_client.client_secret,
        "registration_access_token": idp.initial_access_token,
        "token_handling": {"accepts_jwt": True, "accepts_reference_tokens": True,
                           "token_format_pattern": OPAQUE_TOKEN_PATTERN},
        "claim_mappings": {"consumer_key_claim": idp.consumer_key_claim, "scopes_claim": idp.scopes_claim},
        "allowed_algorithms": ["RS256", "ES256"],
        "consumer_app_creation_enabled": False,
        **fields,
    }
    return live.admin.create_key_manager(**body)


def mapped_client(live: LiveMesh, idp: FakeIdp, key_manager: dict[str, Any], application: dict[str, Any],
                  *, environment: str = "PRODUCTION") -> str:
    """A client created at the IdP, mapped to the application by its consumer key."""
    client = idp.add_client()
    live.admin.map_application_key(application["id"], environment=environment,
                                   key_manager_id=key_manager["id"], consumer_key=client.client_id)
    return client.client_id


# --- authorization_code with PKCE, through the login form ---------------------------------
def pkce_pair(method: str) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    if method == "plain":
        return verifier, verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Forms(HTMLParser):
    """The forms of an HTML page: action, method and input fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""), "method": attributes.get("method", "get").lower(), "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append(attributes)


def _fill(form: dict[str, Any], username: str, password: str) -> dict[str, str]:
    data: dict[str, str] = {}
    submitted = False
    for field in form["inputs"]:
        name, kind = field.get("name"), field.get("type", "text").lower()
        if not name:
            continue
        if kind == "password":
            data[name] = password
        elif kind in ("text", "email") and any(word in name.lower() for word in ("user", "login", "email", "name")):
            data[name] = username
        elif kind == "submit":
            if not submitted:  # the first named submit button: "log in" / "allow"
                data[name] = field.get("value", "")
                submitted = True
        elif kind in ("hidden", "text"):
            data[name] = field.get("value", "")
    return data


def authorize(live: LiveMesh, key: AppKey, *, username: str, password: str, challenge: str,
              method: str, scope: str = "", redirect_uri: str = CALLBACK_URL) -> str:
    """Runs /oauth2/authorize as a browser would (login form, maybe a consent form) and
    returns the authorization code from the redirect to the callback."""
    state = secrets.token_urlsafe(12)
    params = {"response_type": "code", "client_id": key.consumer_key, "redirect_uri": redirect_uri,
              "code_challenge": challenge, "code_challenge_method": method, "state": state}
    if scope:
        params["scope"] = scope
    with oauth_http(live) as browser:
        response = browser.get("/oauth2/authorize", params=params)
        for _step in range(4):
            if response.status_code in (302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_uri):
                    query = parse_qs(urlsplit(location).query)
                    assert query.get("state") == [state], f"redirect without our state: {location}"
                    assert "code" in query, f"authorization refused: {location}"
                    return query["code"][0]
                response = browser.get(location)
                continue
            parser = _Forms()
            parser.feed(response.text)
            assert response.status_code == 200 and parser.forms, f"no form to fill: {describe(response)}"
            form = parser.forms[0]
            target = urljoin(str(response.url), form["action"] or str(response.url))
            response = browser.post(target, data=_fill(form, username, password))
    raise AssertionError(f"no redirect to the callback after the login: {describe(response)}")


def exchange_code(live: LiveMesh, key: AppKey, code: str, verifier: str, *, redirect_uri: str = CALLBACK_URL) -> httpx.Response:
    return token_response(live, key.consumer_key, key.consumer_secret or None, grant_type="authorization_code",
                          code=code, code_verifier=verifier, redirect_uri=redirect_uri)
