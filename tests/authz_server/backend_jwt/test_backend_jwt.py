"""The backend JWT stage: claims, signing (ES256, RS256, EdDSA), the cache and its refresh
margin on an injected clock, open resources, missing keys, header hygiene in the Envoy
answer, and the signing key index."""

from __future__ import annotations

import jwt
import pytest
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.backend_jwt.cache import BackendJwtCache, refresh_margin
from authz_server.backend_jwt.claims import backend_claims
from authz_server.backend_jwt.issuer import BackendJwtIssuer
from authz_server.context import CredentialKind, Identity
from authz_server.denials import BackendJwtUnavailable
from authz_server.envoy_adapter import to_check_response, to_request_context
from authz_server.index.api_keys import KeyEnvironment
from authz_server.index.apis import compile_api
from authz_server.index.applications import ApplicationPolicy
from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline import Allow, decide

from ..backend_jwt_kit import (
    OTHER_ES256, CountingSigner, backend_config, jwt_api, key_entity, key_record, verify,
)
from ..checks import check_request, header_dict
from ..factories import NOW, PIZZA_BASE, PROD_KEY, SANDBOX_KEY, entity, make_request, pizza_world


def _index(api: admin_pb2.Api | None = None, *keys: sync_pb2.BackendSigningKeyRecord, revision: int = 1) -> PolicyIndex:
    world = [r if not isinstance(r, admin_pb2.Api) else (api or jwt_api()) for r in pizza_world()]
    entities = [entity(r) for r in world] + [key_entity(k) for k in (keys or (key_record(),))]
    return PolicyIndex.from_snapshot(entities, revision)


def _decide(index, *, key=PROD_KEY, path="/menu", issuer=None, now=NOW, headers=None):
    request = make_request(PIZZA_BASE + path, headers={"apikey": key, **(headers or {})} if key else headers)
    return decide(request, index, now, None, issuer or BackendJwtIssuer())


# --- claims --------------------------------------------------------------------------------


def test_an_api_key_caller_gets_a_signed_jwt_with_the_portcullis_claims():
    record = key_record()
    decision = _decide(_index(jwt_api(), record))
    assert isinstance(decision, Allow) and decision.backend_jwt
    claims = verify(decision.backend_jwt, record)
    assert claims.pop("jti") and claims.pop("iat") == int(NOW) and claims.pop("exp") == int(NOW) + 300
    assert claims == {
        "iss": "portcullis", "sub": "alice", "org": "default",
        "api": {"id": "api-pizza", "name": "api-pizza", "version": "1.0.0", "context": PIZZA_BASE},
        "application": {"id": "app-1", "name": "app-1", "owner": "alice", "tier": "Unlimited"},
        "subscriber": "alice", "key_type": "PRODUCTION", "credential": "api_key", "scopes": [],
    }
    assert jwt.get_unverified_header(decision.backend_jwt) == {"alg": "ES256", "kid": "kid-es-1", "typ": "JWT"}


def test_a_sandbox_key_is_key_type_sandbox():
    record = key_record()
    decision = _decide(_index(jwt_api(), record), key=SANDBOX_KEY)
    assert verify(decision.backend_jwt, record)["key_type"] == "SANDBOX"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_each_algorithm_signs_with_its_own_key(algorithm):
    records = [key_record(a, f"kid-{a}") for a in ("ES256", "RS256", "EdDSA")]
    decision = _decide(_index(jwt_api(backend_config(algorithm=algorithm)), *records))
    record = next(r for r in records if r.algorithm == algorithm)
    assert jwt.get_unverified_header(decision.backend_jwt)["alg"] == algorithm
    assert verify(decision.backend_jwt, record)["sub"] == "alice"


def _token_identity(**fields) -> Identity:
    values = dict(kind=CredentialKind.OAUTH2_JWT, environment=KeyEnvironment.PRODUCTION, application_id="app-1",
                  key_manager_id="km-1", consumer_key="pcc_client", scopes=frozenset({"b", "a"}), subject="u-42",
                  credential_id="token:abc",
                  claims={"sub": "u-42", "email": "bob@example.com", "groups": ["cooks"], "iss": "https://idp"})
    values.update(fields)
    return Identity(**values)


APP = ApplicationPolicy(id="app-1", organization_id="default", name="Mobile", owner="alice", throttling_tier="Gold")


def _claims(config=None, identity=None, application=APP):
    api = compile_api(jwt_api(config or backend_config()))
    return backend_claims(issuer="portcullis", now=int(NOW), config=api.backend_jwt, api=api,
                          environment="production", identity=identity, application=application)


def test_a_token_caller_is_the_end_user_with_consumer_key_and_sorted_scopes():
    claims = _claims(identity=_token_identity())
    assert (claims["sub"], claims["consumer_key"], claims["scopes"], claims["credential"]) == (
        "u-42", "pcc_client", ["a", "b"], "oauth2")
    assert claims["application"]["tier"] == "Gold" and claims["subscriber"] == "alice"


@pytest.mark.parametrize("subject", ["pcc_client", ""], ids=["client-credentials", "no-subject"])
def test_a_token_standing_for_its_client_names_the_application_owner(subject):
    assert _claims(identity=_token_identity(subject=subject))["sub"] == "alice"


def test_mapped_and_static_claims_are_added_but_never_replace_portcullis_claims():
    config = backend_config(claim_mappings=[("email", "email"), ("groups", "roles"), ("missing", "gone")],
                            static_claims=[("team", "pizza")])
    # Records that slipped past admin_api's validation are filtered again here.
    config.claim_mappings.add(from_claim="iss", to_claim="iss")
    config.claim_mappings.add(from_claim="sub", to_claim="subscriber")
    config.static_claims.add(name="sub", value="mallory")
    claims = _claims(config, identity=_token_identity())
    assert (claims["email"], claims["roles"], claims["team"]) == ("bob@example.com", ["cooks"], "pizza")
    assert "gone" not in claims
    assert (claims["iss"], claims["sub"], claims["subscriber"]) == ("portcullis", "u-42", "alice")


def test_an_api_key_without_application_has_no_application_claims():
    identity = Identity(kind=CredentialKind.API_KEY, environment=KeyEnvironment.PRODUCTION, application_id=None,
                        credential_id="api_key:k1")
    claims = _claims(identity=identity, application=None)
    assert "application" not in claims and "subscriber" not in claims and claims["sub"] == "api_key:k1"


# --- open resources, keys -----------------------------------------------------------------


def test_open_resources_get_no_jwt_unless_the_api_opts_in():
    assert _decide(_index(jwt_api()), key=None, path="/open").backend_jwt == ""
    record = key_record()
    decision = _decide(_index(jwt_api(backend_config(include_on_open_resources=True)), record), key=None, path="/open")
    claims = verify(decision.backend_jwt, record)
    assert (claims["sub"], claims["credential"], claims["key_type"]) == ("anonymous", "none", "PRODUCTION")
    assert "application" not in claims


def test_an_api_without_backend_jwt_gets_none():
    api = jwt_api(admin_pb2.BackendJwtConfig(enabled=False, header="x-jwt-assertion"))
    assert _decide(_index(api)).backend_jwt == ""


def test_no_key_for_the_algorithm_fails_closed():
    decision = _decide(_index(jwt_api(backend_config(algorithm="RS256")), key_record("ES256")))
    assert isinstance(decision, BackendJwtUnavailable)
    assert (decision.code, decision.http_status, decision.api_id) == ("backend_jwt_unavailable", 503, "api-pizza")


def test_the_newest_active_key_signs_and_retired_keys_never_do():
    old = key_record(kid="kid-old", private_key=OTHER_ES256, not_before=int(NOW) - 100)
    new = key_record(kid="kid-new", not_before=int(NOW) - 10)
    retired_newer = key_record(kid="kid-retired", private_key=OTHER_ES256, not_before=int(NOW) - 5,
                               retired_at=int(NOW) - 1, expires_at=int(NOW) + 3900)
    index = _index(jwt_api(), old, new, retired_newer)
    assert index.backend_keys.signing_key("ES256").kid == "kid-new"
    assert jwt.get_unverified_header(_decide(index).backend_jwt)["kid"] == "kid-new"
    without_new = index.with_delete(sync_pb2.EntityRef(kind=sync_pb2.BACKEND_SIGNING_KEY, id="kid-new"), 2)
    assert without_new.backend_keys.signing_key("ES256").kid == "kid-old"


def _with(record: sync_pb2.BackendSigningKeyRecord, **changes) -> sync_pb2.BackendSigningKeyRecord:
    changed = sync_pb2.BackendSigningKeyRecord()
    changed.CopyFrom(record)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


@pytest.mark.parametrize("record", [
    pytest.param(_with(key_record("ES256", "k"), private_key_pem="garbage"), id="unreadable-pem"),
    pytest.param(_with(key_record("RS256", "k"), algorithm="ES256"), id="rsa-key-for-es256"),
    pytest.param(_with(key_record("ES256", "k"), algorithm="HS256"), id="unsupported-algorithm"),
    pytest.param(_with(key_record("ES256", "k"), public_jwk_json="{not json"), id="unreadable-jwk"),
])
def test_a_broken_key_record_is_dropped(record):
    index = PolicyIndex.from_snapshot([key_entity(record)], 1)
    assert index.backend_keys.get("k") is None and index.backend_keys.signing_key("ES256") is None


# --- the cache --------------------------------------------------------------------------


def test_a_repeated_caller_costs_no_signature_until_the_refresh_margin():
    signer = CountingSigner()
    issuer = BackendJwtIssuer(signer=signer)
    index = _index(jwt_api(backend_config(validity_seconds=300)))
    first = _decide(index, issuer=issuer).backend_jwt
    margin = refresh_margin(300)
    assert margin == 30
    assert _decide(index, issuer=issuer, now=NOW + 300 - margin - 1).backend_jwt == first
    assert signer.signatures == 1
    later = _decide(index, issuer=issuer, now=NOW + 300 - margin).backend_jwt
    assert later != first and signer.signatures == 2


def test_short_validities_refresh_at_twenty_percent():
    assert refresh_margin(10) == 2 and refresh_margin(100) == 20 and refresh_margin(3600) == 30


def test_the_cache_is_per_credential_environment_and_key():
    signer = CountingSigner()
    issuer = BackendJwtIssuer(signer=signer)
    index = _index(jwt_api())
    production = _decide(index, issuer=issuer).backend_jwt
    sandbox = _decide(index, issuer=issuer, key=SANDBOX_KEY).backend_jwt
    assert production != sandbox and signer.signatures == 2
    rotated = index.with_upsert(key_entity(key_record(kid="kid-es-2", private_key=OTHER_ES256,
                                                      not_before=int(NOW))), 2)
    after_rotation = _decide(rotated, issuer=issuer).backend_jwt
    assert jwt.get_unverified_header(after_rotation)["kid"] == "kid-es-2" and signer.signatures == 3


def test_a_configuration_change_signs_anew():
    issuer = BackendJwtIssuer(signer=CountingSigner())
    before = _decide(_index(jwt_api()), issuer=issuer).backend_jwt
    changed = _index(jwt_api(backend_config(static_claims=[("team", "pizza")])))
    after = _decide(changed, issuer=issuer).backend_jwt
    assert after != before and jwt.decode(after, options={"verify_signature": False})["team"] == "pizza"


def test_the_cache_is_bounded():
    cache = BackendJwtCache(max_entries=2)
    for name in ("a", "b", "c"):
        cache.put(name, name, NOW + 300, 300)
    assert len(cache) == 2 and cache.get("a", NOW) is None and cache.get("c", NOW) == "c"


def test_an_identity_without_credential_id_is_never_cached():
    signer = CountingSigner()
    issuer = BackendJwtIssuer(signer=signer)
    index = _index(jwt_api())
    api = index.apis["api-pizza"]
    identity = Identity(kind=CredentialKind.API_KEY, environment=KeyEnvironment.PRODUCTION, application_id="app-1")
    issuer.issue(api, "production", identity, index, NOW)
    issuer.issue(api, "production", identity, index, NOW)
    assert signer.signatures == 2


# --- the Envoy answer -------------------------------------------------------------------


def _ok(index, path="/menu", headers=None):
    context = to_request_context(check_request(PIZZA_BASE + path, headers=headers))
    decision = decide(context, index, NOW, None, BackendJwtIssuer())
    assert isinstance(decision, Allow), decision
    return decision, to_check_response(decision, context).ok_response


def test_the_jwt_overwrites_a_client_sent_copy():
    decision, ok = _ok(_index(jwt_api()), headers={"apikey": PROD_KEY, "X-JWT-Assertion": "forged"})
    options = {option.header.key: option for option in ok.headers}
    assert options["x-jwt-assertion"].header.value == decision.backend_jwt
    assert options["x-jwt-assertion"].append_action == options["x-jwt-assertion"].OVERWRITE_IF_EXISTS_OR_ADD
    assert "x-jwt-assertion" not in ok.headers_to_remove


@pytest.mark.parametrize("api", [
    pytest.param(None, id="no-backend-jwt"),
    pytest.param(jwt_api(admin_pb2.BackendJwtConfig(enabled=False, header="x-jwt-assertion")), id="disabled"),
])
def test_a_client_sent_assertion_is_removed_when_the_api_signs_none(api):
    index = _index(api or pizza_world()[1])
    decision, ok = _ok(index, headers={"apikey": PROD_KEY, "x-jwt-assertion": "forged"})
    assert decision.backend_jwt == "" and "x-jwt-assertion" in ok.headers_to_remove
    assert "x-jwt-assertion" not in header_dict(ok.headers)


def test_a_custom_header_is_set_and_its_spoofed_copy_removed_even_when_disabled():
    on = _index(jwt_api(backend_config(header="x-backend-token")))
    _, ok = _ok(on, headers={"apikey": PROD_KEY, "x-backend-token": "forged"})
    assert "x-backend-token" in header_dict(ok.headers) and "x-backend-token" not in ok.headers_to_remove
    off = _index(jwt_api(admin_pb2.BackendJwtConfig(enabled=False, header="x-backend-token")))
    _, ok = _ok(off, headers={"apikey": PROD_KEY, "x-backend-token": "forged"})
    assert "x-backend-token" in ok.headers_to_remove


@pytest.mark.parametrize("passed", [False, True], ids=["removed-by-default", "passed-when-enabled"])
def test_authorization_reaches_the_backend_only_when_the_api_says_so(passed):
    api = jwt_api()
    api.pass_authorization_header = passed
    _, ok = _ok(_index(api), headers={"apikey": PROD_KEY, "authorization": "Basic dXNlcjpwYXNz"})
    assert ("authorization" in ok.headers_to_remove) is not passed
    assert "apikey" in ok.headers_to_remove


# --- settings ---------------------------------------------------------------------------


def test_settings_issuer_and_cache_size():
    from authz_server.settings import BackendJwtSettings
    from portcullis_shared.settings import SettingsError

    assert BackendJwtSettings.from_env({}) == BackendJwtSettings(issuer="portcullis", cache_size=10_000)
    assert BackendJwtSettings.from_env({"PORTCULLIS_BACKEND_JWT_ISSUER": "https://gw.example.com",
                                        "PORTCULLIS_BACKEND_JWT_CACHE_SIZE": "5"}).cache_size == 5
    for env in ({"PORTCULLIS_BACKEND_JWT_CACHE_SIZE": "0"}, {"PORTCULLIS_BACKEND_JWT_ISSUER": "a\nb"}):
        with pytest.raises(SettingsError):
            BackendJwtSettings.from_env(env)
