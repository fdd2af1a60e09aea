"""The real admin REST app with the resident key manager's routes, on a migrated
temporary SQLite file: one application with users, scopes and keys per test."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_api import bootstrap
from admin_api.app import open_store
from admin_api.crypto.kek import Kek
from admin_api.dispatch import Dispatcher
from admin_api.transports.oauth2.resident import ResidentKeyManager
from admin_api.transports.oauth2.routes import oauth_routes
from admin_api.transports.rest import create_app
from admin_api.config import ServiceConfig
from admin_api.store.unit_of_work import Store

ISSUER = "http://127.0.0.1:8081"
OWNER = "alice"
OWNER_PASSWORD = "alice-password-1"
OTHER_USER = "bob"
OTHER_PASSWORD = "bob-password-1"
CALLBACK = "https://app.example.com/callback"


@dataclass
class Client:
    """An application key of the resident key manager, as a test sees it."""

    key_id: str
    consumer_key: str
    consumer_secret: str

    @property
    def basic(self) -> tuple[str, str]:
        return (self.consumer_key, self.consumer_secret)


@dataclass
class OAuthEnv:
    http: TestClient
    admin: dict[str, str]
    sync_token: str
    store: Store
    resident: ResidentKeyManager
    db_path: Path
    application_id: str
    secrets_seen: list[str] = field(default_factory=list)

    def admin_call(self, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.admin, **kwargs)
        assert response.status_code == expected, response.text
        return response.json() if response.content else None

    def new_client(self, *, application_id: str | None = None, environment: str = "PRODUCTION",
                   **settings: Any) -> Client:
        settings.setdefault("grant_types", ["client_credentials", "password", "refresh_token",
                                            "authorization_code"])
        if "authorization_code" in settings["grant_types"]:
            settings.setdefault("callback_url", CALLBACK)
        answer = self.admin_call("POST", f"/v1/applications/{application_id or self.application_id}/keys", 201,
                                 json={"environment": environment, "settings": settings})
        secret = answer["consumer_secret"]
        if secret:
            self.secrets_seen.append(secret)
        return Client(answer["key"]["id"], answer["key"]["consumer_key"], secret)

    def token(self, data: dict[str, str], client: Client | None = None, **kwargs: Any) -> Any:
        auth = client.basic if client is not None and client.consumer_secret else None
        return self.http.post("/oauth2/token", data=data, auth=auth, **kwargs)

    def introspect(self, token: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {"Authorization": f"Bearer {self.sync_token}"})
        response = self.http.post("/oauth2/introspect", data={"token": token}, headers=headers, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def kek() -> Kek:
    return Kek.generate()


@pytest.fixture
def oauth(tmp_path: Path, kek: Kek) -> Iterator[OAuthEnv]:
    db_path = tmp_path / "portcullis.db"
    config = ServiceConfig(public_url=ISSUER, kek=kek, multiple_consumer_secrets=True)
    store = open_store(f"sqlite:///{db_path}", config)
    created = bootstrap.ensure_credentials(store, tmp_path / "admin-token", tmp_path / "sync-token")
    assert created.admin_token and created.sync_token
    resident = ResidentKeyManager.create(store)
    app = create_app(Dispatcher(store), extra_routes=oauth_routes(resident))
    try:
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as http:
            env = OAuthEnv(http=http, admin={"Authorization": f"Bearer {created.admin_token}"},
                           sync_token=created.sync_token, store=store, resident=resident, db_path=db_path,
                           application_id="")
            env.admin_call("POST", "/v1/users", 201,
                           json={"username": OWNER, "password": OWNER_PASSWORD, "roles": ["reader", "writer"]})
            env.admin_call("POST", "/v1/users", 201,
                           json={"username": OTHER_USER, "password": OTHER_PASSWORD, "roles": ["reader"]})
            env.admin_call("POST", "/v1/scopes", 201, json={"name": "menu:read", "roles": ["reader"]})
            env.admin_call("POST", "/v1/scopes", 201, json={"name": "menu:write", "roles": ["writer"]})
            env.admin_call("POST", "/v1/scopes", 201, json={"name": "admin", "roles": ["administrator"]})
            env.admin_call("POST", "/v1/scopes", 201, json={"name": "open", "roles": []})
            application = env.admin_call("POST", "/v1/applications", 201,
                                         json={"name": "PizzaApp", "owner": OWNER})
            env.application_id = application["id"]
            yield env
    finally:
        store.db.dispose()


def authorization_params(client: Client, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {"response_type": "code", "client_id": client.consumer_key,
                                     "redirect_uri": CALLBACK, "scope": "menu:read", "state": "st-123"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def csrf_token(page: Any) -> str:
    """The sign-in form's CSRF token (its cookie is kept by the client)."""
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def login(env: OAuthEnv, params: dict[str, str], username: str = OWNER, password: str = OWNER_PASSWORD) -> Any:
    """The user opens the sign-in page of the authorization endpoint, submits its form and,
    for a third-party client, allows it on the consent page."""
    page = env.http.get("/oauth2/authorize", params=params)
    token = csrf_token(page) if page.status_code == 200 else ""
    signed_in = env.http.post("/oauth2/authorize", params=params,
                              data={"username": username, "password": password, "csrf_token": token})
    if signed_in.status_code == 200 and 'name="consent_ticket"' in signed_in.text:
        return consent(env, params, signed_in)   # a third-party client: the user allows it
    return signed_in


def consent(env: OAuthEnv, params: dict[str, str], page: Any, answer: str = "allow") -> Any:
    """The user answers the consent page of a third-party client."""
    import re

    ticket = re.search(r'name="consent_ticket" value="([^"]+)"', page.text)
    assert ticket, page.text
    return env.http.post("/oauth2/authorize", params=params, data={
        "consent": answer, "consent_ticket": ticket.group(1), "csrf_token": csrf_token(page)})


def code_from(response: Any, state: str = "st-123") -> str:
    from urllib.parse import parse_qs, urlsplit

    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def redirect_error(response: Any) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlsplit

    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert location.geturl().startswith(CALLBACK)
    return parse_qs(location.query)
