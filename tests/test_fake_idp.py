"""The fake OIDC provider itself (no mesh): its protocols answer as the RFCs say, so
that the integration tests built on it test Portcullis and not the fake."""

from __future__ import annotations

import re
import time
from typing import Iterator

import httpx
import jwt
import pytest

from tests.fake_idp import OPAQUE_TOKEN_PATTERN, FakeIdp, tamper, unsigned


@pytest.fixture
def idp() -> Iterator[FakeIdp]:
    with FakeIdp() as provider:
        yield provider


@pytest.fixture
def http(idp: FakeIdp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=idp.base_url, timeout=5.0, trust_env=False) as client:
        yield client


def verify(idp: FakeIdp, token: str) -> dict[str, object]:
    """Verifies a token the way a relying party does: discovery, then JWKS by kid."""
    jwks = jwt.PyJWKSet.from_dict(httpx.get(idp.discovery()["jwks_uri"], trust_env=False).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["RS256", "ES256", "PS256"], audience="api://default", issuer=idp.issuer)


def test_discovery_names_its_own_endpoints(http: httpx.Client, idp: FakeIdp) -> None:
    document = http.get("/.well-known/openid-configuration").json()
    assert document["issuer"] == idp.base_url
    for name in ("jwks_uri", "token_endpoint", "introspection_endpoint", "revocation_endpoint", "registration_endpoint"):
        assert document[name].startswith(idp.base_url + "/")


def test_jwks_publishes_rsa_and_ec_keys_with_kids(http: httpx.Client, idp: FakeIdp) -> None:
    keys = http.get("/jwks").json()["keys"]
    assert {(key["kty"], key["alg"]) for key in keys} == {("RSA", "RS256"), ("EC", "ES256")}
    assert all(key["kid"] for key in keys)
    added = idp.add_key("ES256")
    assert added.kid in {key["kid"] for key in http.get("/jwks").json()["keys"]}
    idp.remove_key(added.kid)
    assert added.kid not in {key["kid"] for key in http.get("/jwks").json()["keys"]}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_tokens_verify_against_the_published_keys(idp: FakeIdp, alg: str) -> None:
    token = idp.access_token("client-1", ["read", "write"], alg=alg)  # type: ignore[arg-type]
    claims = verify(idp, token)
    assert claims["cid"] == "client-1"
    assert claims["scp"] == ["read", "write"]


def test_a_tampered_token_does_not_verify(idp: FakeIdp) -> None:
    with pytest.raises(jwt.InvalidSignatureError):
        verify(idp, tamper(idp.access_token("client-1")))


def test_unsigned_tokens_carry_alg_none(idp: FakeIdp) -> None:
    token = unsigned(idp.claims("client-1"))
    assert jwt.get_unverified_header(token)["alg"] == "none"


def test_client_credentials_needs_basic_auth(http: httpx.Client, idp: FakeIdp) -> None:
    client = idp.add_client()
    refused = http.post("/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, "wrong"))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    answer = http.post("/token", data={"grant_type": "client_credentials", "scope": "a b"},
                       auth=(client.client_id, client.client_secret)).json()
    assert answer["token_type"] == "Bearer"
    assert verify(idp, answer["access_token"])["scp"] == ["a", "b"]


def test_opaque_tokens_introspect_and_revoke(http: httpx.Client, idp: FakeIdp) -> None:
    client = idp.add_client(token_format="opaque")
    token = http.post("/token", data={"grant_type": "client_credentials", "scope": "read"},
                      auth=(client.client_id, client.client_secret)).json()["access_token"]
    assert re.fullmatch(OPAQUE_TOKEN_PATTERN, token)
    introspector = (idp.introspection_client.client_id, idp.introspection_client.client_secret)
    assert http.post("/introspect", data={"token": token}).status_code == 401
    active = http.post("/introspect", data={"token": token}, auth=introspector).json()
    assert active["active"] is True
    assert active["client_id"] == client.client_id
    assert active["scope"] == "read"
    assert http.post("/revoke", data={"token": token}, auth=(client.client_id, client.client_secret)).status_code == 200
    assert http.post("/introspect", data={"token": token}, auth=introspector).json() == {"active": False}


def test_expired_and_unknown_opaque_tokens_are_inactive(idp: FakeIdp) -> None:
    assert idp.introspect(idp.opaque_token("c", lifetime=-1)) == {"active": False}
    assert idp.introspect("fidp_" + "0" * 40) == {"active": False}


def test_introspection_can_be_made_to_fail(http: httpx.Client, idp: FakeIdp) -> None:
    introspector = (idp.introspection_client.client_id, idp.introspection_client.client_secret)
    idp.introspection_mode = "error"
    assert http.post("/introspect", data={"token": "x"}, auth=introspector).status_code == 500
    idp.introspection_mode = "garbage"
    with pytest.raises(ValueError):
        http.post("/introspect", data={"token": "x"}, auth=introspector).json()
    idp.introspection_mode = "slow"
    idp.slow_seconds = 2.0
    with pytest.raises(httpx.ReadTimeout):
        http.post("/introspect", data={"token": "x"}, auth=introspector, timeout=0.2)


def test_dynamic_client_registration_needs_the_initial_access_token(http: httpx.Client, idp: FakeIdp) -> None:
    metadata = {"client_name": "app", "grant_types": ["client_credentials"], "response_types": []}
    assert http.post("/register", json=metadata).status_code == 401
    assert http.post("/register", json=metadata, headers={"authorization": "Bearer wrong"}).status_code == 401
    answer = http.post("/register", json=metadata, headers={"authorization": f"Bearer {idp.initial_access_token}"})
    assert answer.status_code == 201
    registered = answer.json()
    assert registered["client_name"] == "app"
    assert registered["client_id"] in idp.clients
    assert len(idp.registrations) == 3
    assert idp.registrations[-1].body == metadata
    # The registered client obtains tokens.
    token = http.post("/token", data={"grant_type": "client_credentials"},
                      auth=(registered["client_id"], registered["client_secret"])).json()["access_token"]
    assert verify(idp, token)["cid"] == registered["client_id"]


def test_claims_can_be_dated_in_the_past_or_future(idp: FakeIdp) -> None:
    now = int(time.time())
    expired = idp.claims("c", lifetime=-600, now=now)
    assert expired["exp"] < now
    future = idp.claims("c", now=now + 3600)
    assert future["nbf"] > now


def _register(http: httpx.Client, idp: FakeIdp, metadata: dict[str, object]) -> dict[str, object]:
    answer = http.post("/register", json=metadata, headers={"authorization": f"Bearer {idp.initial_access_token}"})
    assert answer.status_code == 201
    return answer.json()


def test_client_configuration_reads_updates_and_deletes_a_registration(http: httpx.Client, idp: FakeIdp) -> None:
    # RFC 7592: the registration answer names the client's configuration endpoint and the
    # token for it; only that token reads, replaces or deletes the registration.
    registered = _register(http, idp, {"client_name": "app", "grant_types": ["client_credentials"],
                                       "response_types": []})
    uri, token = str(registered["registration_client_uri"]), str(registered["registration_access_token"])
    assert uri == f"{idp.base_url}/register/{registered['client_id']}"
    bearer = {"authorization": f"Bearer {token}"}
    assert http.get(uri).status_code == 401
    assert http.get(uri, headers={"authorization": f"Bearer {idp.initial_access_token}"}).status_code == 401
    read = http.get(uri, headers=bearer).json()
    assert (read["client_id"], read["client_name"], read["client_secret"]) == (
        registered["client_id"], "app", registered["client_secret"])
    assert http.put(uri, json={"client_id": "someone-else", "client_name": "x"}, headers=bearer).status_code == 400
    renamed = {"client_id": registered["client_id"], "client_name": "renamed", "grant_types": ["client_credentials"],
               "response_types": []}
    updated = http.put(uri, json=renamed, headers=bearer)
    assert updated.status_code == 200 and updated.json()["client_name"] == "renamed"
    # §2.2 strictly: server-set members are never sent back, a secret sent must be the client's.
    for extra in ({"registration_access_token": token}, {"registration_client_uri": uri},
                  {"client_id_issued_at": 1}, {"client_secret_expires_at": 0}, {"client_secret": "other"}):
        assert http.put(uri, json={**renamed, **extra}, headers=bearer).status_code == 400, extra
    # An update is a whole registration: omitted response_types means ["code"] again.
    refused = http.put(uri, json={"client_id": registered["client_id"], "grant_types": ["client_credentials"]},
                       headers=bearer)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"
    assert [r.method for r in idp.configurations][-2:] == ["PUT", "PUT"]
    assert http.delete(uri, headers=bearer).status_code == 204
    assert http.get(uri, headers=bearer).status_code == 401
    refused = http.post("/token", data={"grant_type": "client_credentials"},
                        auth=(str(registered["client_id"]), str(registered["client_secret"])))
    assert refused.status_code == 401


def test_a_public_client_is_registered_without_a_secret(http: httpx.Client, idp: FakeIdp) -> None:
    registered = _register(http, idp, {"client_name": "spa", "token_endpoint_auth_method": "none",
                                       "redirect_uris": ["https://spa.example/cb"]})
    assert "client_secret" not in registered and registered["client_id"] in idp.clients


@pytest.mark.parametrize("metadata, error", [
    pytest.param({"grant_types": ["client_credentials"]}, "invalid_client_metadata", id="response-types-omitted"),
    pytest.param({"grant_types": ["authorization_code"], "response_types": ["code"]}, "invalid_redirect_uri",
                 id="code-without-redirect-uris"),
    pytest.param({}, "invalid_redirect_uri", id="all-defaults"),
    pytest.param({"grant_types": ["authorization_code"], "response_types": [], "redirect_uris": ["https://a/cb"]},
                 "invalid_client_metadata", id="code-grant-without-code-response"),
])
def test_registration_reads_rfc_7591_defaults_strictly(http: httpx.Client, idp: FakeIdp, metadata, error) -> None:
    answer = http.post("/register", json=metadata, headers={"authorization": f"Bearer {idp.initial_access_token}"})
    assert answer.status_code == 400 and answer.json()["error"] == error


def test_scripted_answers_and_failures(http: httpx.Client, idp: FakeIdp) -> None:
    idp.reset(jwks_document={"keys": []}, jwks_status=503, answers={"tok": {"active": True, "client_id": "c"}},
              verify_introspection_caller=False, issuer_override="https://elsewhere.example")
    jwks = http.get("/jwks")
    assert (jwks.status_code, jwks.json()) == (503, {"keys": []})
    assert http.post("/introspect", data={"token": "tok"}).json() == {"active": True, "client_id": "c"}
    assert idp.introspection_count == 1 and idp.authorizations == [""]
    assert http.get("/.well-known/openid-configuration").json()["issuer"] == "https://elsewhere.example"
    idp.reset()
    assert http.get("/jwks").status_code == 200 and idp.jwks_fetches == 1 and idp.introspection_count == 0
    assert http.post("/introspect", data={"token": "tok"}).status_code == 401
    with pytest.raises(AttributeError):
        idp.reset(no_such_knob=1)
