"""Multiple consumer secrets at the token endpoint, and the discovery document."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from admin_api.db.models import ConsumerSecret
from admin_api.db.types import utcnow
from admin_api.presets import RESIDENT_PATHS
from tests.admin_api.transports.oauth2.conftest import ISSUER, OAuthEnv


def cc(env: OAuthEnv, consumer_key: str, secret: str) -> int:
    return env.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=(consumer_key, secret)).status_code


def test_every_unexpired_secret_obtains_tokens(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    second = oauth.admin_call("POST", f"/v1/application-keys/{client.key_id}/secrets", 201,
                              json={"description": "rotation"})
    third = oauth.admin_call("POST", f"/v1/application-keys/{client.key_id}/secrets", 201,
                             json={"description": "expiring", "validity_days": 1})
    for value in (client.consumer_secret, second["value"], third["value"]):
        assert cc(oauth, client.consumer_key, value) == 200

    with oauth.store.write() as writer:
        writer.session.execute(update(ConsumerSecret).where(ConsumerSecret.id == third["secret"]["id"])
                               .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert cc(oauth, client.consumer_key, third["value"]) == 401
    assert cc(oauth, client.consumer_key, second["value"]) == 200


def test_deleted_secret_stops_but_its_tokens_stay_valid(oauth: OAuthEnv) -> None:
    client = oauth.new_client()
    second = oauth.admin_call("POST", f"/v1/application-keys/{client.key_id}/secrets", 201, json={})
    token = oauth.http.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=(client.consumer_key, second["value"])).json()["access_token"]
    oauth.admin_call("DELETE", f"/v1/application-keys/{client.key_id}/secrets/{second['secret']['id']}", 204)
    assert cc(oauth, client.consumer_key, second["value"]) == 401
    assert cc(oauth, client.consumer_key, client.consumer_secret) == 200
    assert oauth.introspect(token)["active"] is True


def test_secret_of_another_key_does_not_work(oauth: OAuthEnv) -> None:
    mine, other = oauth.new_client(), oauth.new_client(environment="SANDBOX")
    assert cc(oauth, mine.consumer_key, other.consumer_secret) == 401


def test_discovery_document(oauth: OAuthEnv) -> None:
    response = oauth.http.get("/.well-known/openid-configuration")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == ISSUER
    for field, path in RESIDENT_PATHS.items():
        if field != "discovery_url":
            assert doc[field] == ISSUER + path, field
    assert set(doc["grant_types_supported"]) == {"client_credentials", "password", "refresh_token",
                                                 "authorization_code"}
    assert doc["code_challenge_methods_supported"] == ["S256", "plain"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                                 "none"}
    assert doc["response_types_supported"] == ["code"]
    assert oauth.http.get("/.well-known/oauth-authorization-server").json() == doc


def test_every_advertised_endpoint_is_served(oauth: OAuthEnv) -> None:
    doc = oauth.http.get("/.well-known/openid-configuration").json()
    assert oauth.http.get(doc["jwks_uri"].removeprefix(ISSUER)).status_code == 200
    for field in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        response = oauth.http.post(doc[field].removeprefix(ISSUER), data={})
        assert response.status_code in (400, 401), field  # an OAuth error, not a 404
        assert "error" in response.json()
    assert oauth.http.get(doc["authorization_endpoint"].removeprefix(ISSUER)).status_code == 400
