"""The portal on the real admin REST app (resident key manager, Dispatcher, a migrated
SQLite file), driven by Starlette's test client: sign-in goes through the genuine
/oauth2/authorize login form and the authorization_code grant with PKCE."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from admin_api.access.caller import Caller, Role
from admin_api.dispatch import Dispatcher
from admin_api.portal.routes import create_portal, portal_routes
from admin_api.portal.web import Portal
from admin_api.services import users
from admin_api.store.unit_of_work import Store
from admin_api.transports.oauth2.resident import ResidentKeyManager
from admin_api.transports.oauth2.routes import oauth_routes
from admin_api.transports.rest import create_app
from portcullis.admin.v1 import users_pb2
from tests.admin_api.key_helpers import PUBLIC_URL, open_key_store

ADMIN = Caller(subject="root", organization_id="default", role=Role.ADMIN)
GATEWAY_URL = "http://127.0.0.1:9"   # nothing listens: Try it answers gateway_unreachable
PASSWORD = "correct horse battery"


@dataclass
class PortalEnv:
    store: Store
    portal: Portal
    app: object

    def browser(self) -> TestClient:
        return TestClient(self.app, base_url=PUBLIC_URL, follow_redirects=False)  # type: ignore[arg-type]

    def user(self, username: str, *roles: str) -> str:
        users.create_user(self.store, users_pb2.CreateUserRequest(
            user=users_pb2.User(username=username, password=PASSWORD, roles=list(roles))), ADMIN)
        return username


@pytest.fixture
def env(tmp_path: Path) -> Iterator[PortalEnv]:
    store = open_key_store(tmp_path / "portcullis.db")
    dispatcher = Dispatcher(store)
    resident = ResidentKeyManager.create(store)
    portal = create_portal(dispatcher, resident, public_url=PUBLIC_URL, gateway_url=GATEWAY_URL,
                           multiple_secrets=True)
    app = create_app(dispatcher, extra_routes=[*oauth_routes(resident), *portal_routes(portal)])
    yield PortalEnv(store, portal, app)
    store.db.dispose()


def sign_in(browser: TestClient, username: str, password: str = PASSWORD, org: str = "") -> httpx.Response:
    """The whole browser sign-in (at the organization `org`, default: the default one);
    answers the callback's response."""
    start = browser.get("/portal/signin" + (f"?org={org}" if org else ""))
    assert start.status_code == 302, start.text
    login = browser.get(start.headers["location"])
    assert login.status_code == 200, login.text
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', login.text).group(1))
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', login.text))
    answer = browser.post(action, data={**hidden, "username": username, "password": password},
                          headers={"Origin": PUBLIC_URL, "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["location"])
    return browser.get(f"{callback.path}?{callback.query}")


def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def signed_in(env: PortalEnv) -> TestClient:
    """A browser signed in as "sam", a subscriber."""
    env.user("sam", "subscriber")
    browser = env.browser()
    assert sign_in(browser, "sam").status_code == 303
    return browser
