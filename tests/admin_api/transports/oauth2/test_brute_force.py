"""Issue 14: brute force against the resident key manager. Per account (the password grant
and the login form share it) and per client (its secret), five failures in a row lock it
out; while locked even the right credential is refused with the same answer; each lockout
doubles; a success clears the count; every failure and lockout is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from admin_api.db.audit_models import AuditRecord
from admin_api.services import failed_logins
from tests.admin_api.transports.oauth2.conftest import (
    OTHER_PASSWORD,
    OTHER_USER,
    OWNER,
    OWNER_PASSWORD,
    OAuthEnv,
    authorization_params,
    login,
)
from tests.admin_api.transports.oauth2.test_grants import assert_oauth_error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(oauth: OAuthEnv) -> Clock:
    fake = Clock()
    guard = oauth.store.config.login_guard
    guard.clock, guard.max_failures, guard.lockout_seconds = fake, 5, 60.0
    return fake


def _password(oauth: OAuthEnv, client, username: str, password: str):
    return oauth.token({"grant_type": "password", "username": username, "password": password}, client)


def _audited(oauth: OAuthEnv, method: str) -> list[AuditRecord]:
    with oauth.store.read() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.method == method)
                                    .order_by(AuditRecord.created_at)))


def test_the_password_grant_locks_the_account_after_five_failures(oauth: OAuthEnv, clock: Clock) -> None:
    client = oauth.new_client()
    for _ in range(5):
        assert_oauth_error(_password(oauth, client, OWNER, "guess"), 400, "invalid_grant")
    # Locked: the right password gets the same answer, unchecked.
    locked = _password(oauth, client, OWNER, OWNER_PASSWORD)
    assert_oauth_error(locked, 400, "invalid_grant")
    # Another account is not affected.
    assert _password(oauth, client, OTHER_USER, OTHER_PASSWORD).status_code == 200
    records = _audited(oauth, failed_logins.PASSWORD_GRANT)
    assert len(records) == 5 and {r.subject for r in records} == {OWNER}
    assert {r.outcome for r in records} == {"PERMISSION_DENIED"} and records[0].credential == "password"
    assert records[-1].detail.endswith("5 in a row; locked out for 60 s")
    assert not any("guess" in r.detail or OWNER_PASSWORD in r.detail for r in records)
    clock.now += 60
    assert _password(oauth, client, OWNER, OWNER_PASSWORD).status_code == 200


def test_the_login_form_shares_the_account_lockout(oauth: OAuthEnv, clock: Clock) -> None:
    client = oauth.new_client()
    params = authorization_params(client)
    for _ in range(3):
        assert_oauth_error(_password(oauth, client, OWNER, "guess"), 400, "invalid_grant")
    for _ in range(2):
        assert login(oauth, params, password="guess").status_code == 401
    page = login(oauth, params)   # the right password, while locked
    assert page.status_code == 401 and "Invalid username or password." in page.text
    assert len(_audited(oauth, failed_logins.LOGIN_FORM)) == 2
    clock.now += 60
    assert login(oauth, params).status_code == 302


def test_each_lockout_doubles_and_a_success_clears_the_count(oauth: OAuthEnv, clock: Clock) -> None:
    client = oauth.new_client()
    for _ in range(4):
        _password(oauth, client, OWNER, "guess")
    assert _password(oauth, client, OWNER, OWNER_PASSWORD).status_code == 200   # count cleared
    for _ in range(4):
        _password(oauth, client, OWNER, "guess")
    assert _password(oauth, client, OWNER, OWNER_PASSWORD).status_code == 200
    for round_, lockout in enumerate((60, 120, 240)):
        for _ in range(5):
            _password(oauth, client, OWNER, "guess")
        clock.now += lockout - 1
        assert _password(oauth, client, OWNER, OWNER_PASSWORD).status_code == 400, round_
        clock.now += 1
    assert _password(oauth, client, OWNER, OWNER_PASSWORD).status_code == 200


def test_a_client_is_locked_after_five_wrong_secrets(oauth: OAuthEnv, clock: Clock) -> None:
    client = oauth.new_client()
    other = oauth.new_client(environment="SANDBOX")
    for _ in range(5):
        wrong = oauth.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                auth=(client.consumer_key, "pcsec_wrong"))
        assert_oauth_error(wrong, 401, "invalid_client")
    right = oauth.token({"grant_type": "client_credentials"}, client)
    assert_oauth_error(right, 401, "invalid_client")
    assert oauth.token({"grant_type": "client_credentials"}, other).status_code == 200
    records = _audited(oauth, failed_logins.CLIENT_AUTHENTICATION)
    assert len(records) == 5 and {(r.subject, r.target_kind) for r in records} == {(client.consumer_key,
                                                                                    "oauth_client")}
    assert not any(client.consumer_secret in r.detail for r in records)
    clock.now += 60
    assert oauth.token({"grant_type": "client_credentials"}, client).status_code == 200
