"""The JWT path end to end through decide(), against an in-test JWKS server on 127.0.0.1:0."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authz_server.pipeline import Allow, decide

from ..factories import PIZZA_BASE, index_of, make_request
from ..oauth import (
    CLIENT,
    EC_KEY,
    ISSUER,
    RSA_KEY,
    RSA_OTHER,
    b64,
    claims,
    forged,
    make_application_key,
    make_key_manager,
    mint,
    oauth_world,
    public_jwk,
    public_pem,
)


def _decide(token, records, tokens, target="/menu"):
    request = make_request(PIZZA_BASE + target, headers={"authorization": f"Bearer {token}"})
    return decide(request, index_of(*records), time.time(), tokens)


def _world(provider, **km_kwargs):
    return oauth_world(make_key_manager(jwks_uri=provider.jwks_uri, **km_kwargs))


def _now() -> int:
    """Read at mint time: tokens are checked by PyJWT against the real clock."""
    return int(time.time())


ALG_KEYS = {"RS256": (RSA_KEY, "rsa-1"), "PS256": (RSA_KEY, "rsa-1"), "ES256": (EC_KEY, "ec-1")}


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_valid_token_is_allowed(provider, tokens, alg):
    key, kid = ALG_KEYS[alg]
    decision = _decide(mint(key=key, alg=alg, kid=kid), _world(provider), tokens)
    assert isinstance(decision, Allow), decision
    assert decision.credential_kind == "oauth2_jwt"
    assert (decision.key_manager_id, decision.consumer_key, decision.application_id) == ("km-idp", CLIENT, "app-1")
    assert decision.environment.value == "production" and decision.subscription.id == "sub-1"


@pytest.mark.parametrize(
    "token_factory,code",
    [
        (lambda: mint(key=RSA_OTHER), "token_signature_invalid"),
        (lambda: mint(claims(exp=_now() - 3600)), "token_expired"),
        (lambda: mint(claims(nbf=_now() + 3600)), "token_not_yet_valid"),
        (lambda: mint(claims(iat=_now() + 3600, nbf=None)), "token_not_yet_valid"),
        (lambda: mint(claims(exp=_now() - 10)), "allowed"),
        (lambda: mint(claims(nbf=_now() + 10)), "allowed"),
        (lambda: mint(claims(exp=_now() - 45)), "token_expired"),
        (lambda: mint(claims(exp=None)), "token_claims_invalid"),
        (lambda: mint(claims(exp="tomorrow")), "token_claims_invalid"),
        (lambda: mint(claims(iss=None)), "token_claims_invalid"),
        (lambda: mint(claims(iss="https://evil.example")), "token_issuer_unknown"),
        (lambda: mint(claims(iss=ISSUER + "/")), "token_issuer_unknown"),
        (lambda: mint(claims(sub=42)), "token_claims_invalid"),
        (lambda: mint(kid="rsa-unknown"), "token_key_unknown"),
        (lambda: mint(kid=None), "token_key_unknown"),
        (lambda: mint(key=EC_KEY, alg="ES256", kid="rsa-1"), "token_signature_invalid"),
        (lambda: mint(headers={"typ": "JWT"}), "allowed"),
        (lambda: mint(headers={"typ": "AT+JWT"}), "allowed"),
        (lambda: mint(headers={"typ": "application/at+jwt"}), "allowed"),
        (lambda: mint(headers={"typ": "JWE"}), "token_malformed"),
        (lambda: mint(headers={"typ": "id_token+jwt"}), "token_malformed"),
        (lambda: mint(headers={"crit": ["exp"], "exp": 1}), "token_malformed"),
        (lambda: mint(claims(azp=None, client_id=None)), "token_claims_invalid"),
        (lambda: mint(claims(azp="pcc_someone-else")), "token_client_unknown"),
        (lambda: mint(key=RSA_KEY, alg="RS384"), "token_algorithm_not_allowed"),
        (lambda: forged({"alg": "RS256", "kid": "rsa-1"}, claims(), b""), "token_signature_invalid"),
    ],
    ids=["wrong-signature", "expired", "nbf-in-future", "iat-in-future-beyond-leeway", "expired-within-leeway",
         "nbf-within-leeway", "expired-beyond-leeway", "missing-exp", "exp-not-a-number", "missing-iss",
         "wrong-iss", "iss-with-trailing-slash", "sub-not-a-string", "unknown-kid", "no-kid-several-keys",
         "ec-token-claiming-rsa-kid", "typ-JWT", "typ-case-insensitive", "typ-media-type", "typ-other",
         "typ-id-token", "unknown-crit", "no-client-claim", "unknown-client", "alg-not-in-allow-list",
         "empty-signature"],
)
def test_jwt_validation(provider, tokens, token_factory, code):
    decision = _decide(token_factory(), _world(provider), tokens)
    assert decision.code == code, getattr(decision, "message", decision)
    if code != "allowed":
        assert decision.http_status == 401


@pytest.mark.parametrize(
    "audience,token_aud,code",
    [("", None, "allowed"), ("", "anything", "allowed"), ("portcullis", "portcullis", "allowed"),
     ("portcullis", ["other", "portcullis"], "allowed"), ("portcullis", "other", "token_audience_invalid"),
     ("portcullis", None, "token_audience_invalid")],
    ids=["none-required-none-sent", "none-required-some-sent", "required-matches", "required-in-list",
         "required-other", "required-missing"],
)
def test_audience(provider, tokens, audience, token_aud, code):
    decision = _decide(mint(claims(aud=token_aud)), _world(provider, audience=audience), tokens)
    assert decision.code == code


@pytest.mark.parametrize(
    "claim_names,payload_client,expected",
    [(("azp", "client_id"), {"azp": CLIENT}, "allowed"),
     (("client_id",), {"azp": "pcc_other", "client_id": CLIENT}, "allowed"),
     (("cid",), {"azp": None, "cid": CLIENT}, "allowed"),
     (("cid",), {"azp": CLIENT}, "token_claims_invalid"),
     (("azp",), {"azp": ["list"]}, "token_claims_invalid")],
    ids=["azp", "client_id-ignores-azp", "cid-okta", "cid-missing", "azp-not-a-string"],
)
def test_consumer_key_claim_mappings(provider, tokens, claim_names, payload_client, expected):
    token = mint(claims(**payload_client))
    decision = _decide(token, _world(provider, consumer_key_claims=claim_names), tokens)
    assert decision.code == expected


@pytest.mark.parametrize(
    "scope_claims,payload,expected",
    [(("scope",), {"scope": "orders:read other"}, "allowed"),
     (("scp",), {"scope": None, "scp": ["x", "orders:admin"]}, "allowed"),
     (("scope", "scp"), {"scope": None, "scp": "orders:read"}, "allowed"),
     (("scope",), {"scope": "menu:read"}, "insufficient_scope"),
     (("scope",), {"scope": None}, "insufficient_scope"),
     (("scope",), {"scope": {"a": 1}}, "token_claims_invalid")],
    ids=["space-separated-string", "array", "second-claim-as-string", "none-of-the-scopes", "no-scope-claim",
         "scope-of-wrong-type"],
)
def test_scope_formats_on_a_scoped_resource(provider, tokens, scope_claims, payload, expected):
    token = mint(claims(**payload))
    decision = _decide(token, _world(provider, scopes_claims=scope_claims), tokens, target="/orders")
    assert decision.code == expected


def test_insufficient_scope_challenge(provider, tokens):
    decision = _decide(mint(claims(scope="menu:read")), _world(provider), tokens, target="/orders")
    assert decision.http_status == 403
    assert decision.challenges == ('Bearer realm="portcullis", error="insufficient_scope", scope="orders:read orders:admin"',)


def test_invalid_token_challenge_escapes_the_description(provider, tokens):
    decision = _decide(mint(key=RSA_OTHER), _world(provider), tokens)
    decision.message = 'say "hi" \\ bye'
    from authz_server.credentials.identify import challenges_for

    api = index_of(*_world(provider)).apis["api-pizza"]
    assert challenges_for(api, decision) == (
        'Bearer realm="portcullis", error="invalid_token", error_description="say \\"hi\\" \\\\ bye"',
    )


def test_token_denial_carries_invalid_token_challenge(provider, tokens):
    decision = _decide(mint(claims(exp=_now() - 3600)), _world(provider), tokens)
    assert decision.challenges == ('Bearer realm="portcullis", error="invalid_token", error_description="The token has expired."',)


def test_scopes_are_not_needed_on_a_resource_without_scopes(provider, tokens):
    assert isinstance(_decide(mint(claims(scope=None)), _world(provider), tokens), Allow)


def test_api_keys_skip_the_scope_stage(tokens):
    from ..factories import PROD_KEY, make_key

    records = oauth_world(make_key_manager(), extra=(make_key(),))
    request = make_request(PIZZA_BASE + "/orders", headers={"apikey": PROD_KEY})
    assert isinstance(decide(request, index_of(*records), time.time(), tokens), Allow)


def test_open_resource_ignores_a_bad_token(provider, tokens):
    decision = _decide("garbage-token", _world(provider), tokens, target="/open")
    assert isinstance(decision, Allow) and decision.identity is None


@pytest.mark.parametrize(
    "token,code",
    [
        ("eyJhbGciOiJSUzI1NiJ9", "token_malformed"),
        ("eyJ!!!.eyJ.sig", "token_malformed"),
        ("eyJub3QganNvbg.eyJ.c2ln", "token_malformed"),
        (b64('["a"]').replace("WyJ", "eyJ", 1) + ".e30.c2ln", "token_malformed"),
        (b64('{"alg":"RS256","alg":"none"}') + "." + b64("{}") + ".c2ln", "token_malformed"),
        (b64('{"alg":"RS256"}') + "." + b64("[1]") + ".c2ln", "token_malformed"),
        ("eyJhbGciOiJSUzI1NiJ9.e30.c2ln.more.dots.here", "token_malformed"),
        ("eyJhbGciOiJSUzI1NiJ9.e30.a.b.c", "credential_unsupported"),
        ("eyJ" + "A" * (1024 * 1024) + ".e30.c2ln", "token_malformed"),
        ("eyJhbGci\udcff.e30.c2ln", "token_malformed"),
        ("eyJhbGciOiJSUzI1NiJ9.e30.c2ln é", "token_malformed"),
    ],
    ids=["one-segment", "bad-base64", "header-not-json", "header-not-object", "duplicate-header-member",
         "payload-not-object", "many-dots", "jwe-five-segments", "one-mebibyte", "non-utf8",
         "non-ascii"],
)
def test_malformed_tokens(provider, tokens, token, code):
    decision = _decide(token, _world(provider), tokens)
    assert decision.code == code
    assert provider.jwks_fetches == 0


def test_issuer_routes_to_the_right_key_manager(provider, tokens):
    other_issuer = "https://other-idp.example.test"
    records = oauth_world(
        make_key_manager(jwks_uri=provider.jwks_uri),
        make_key_manager("km-other", name="Other", issuer=other_issuer, certificate_pem=public_pem(RSA_OTHER).decode()),
        extra=(make_application_key("ak-other", "pcc_other-client", key_manager_id="km-other"),),
    )
    decision = _decide(mint(claims(iss=other_issuer, azp="pcc_other-client"), key=RSA_OTHER, kid=None), records, tokens)
    assert isinstance(decision, Allow) and decision.key_manager_id == "km-other"
    # The other key manager's client is not a client of the first one.
    decision = _decide(mint(claims(azp="pcc_other-client")), records, tokens)
    assert decision.code == "token_client_unknown"
    # A token of the first key manager is not verified with the second one's key.
    decision = _decide(mint(claims(iss=other_issuer, azp="pcc_other-client")), records, tokens)
    assert decision.code == "token_signature_invalid"


def test_issuer_of_another_organization_is_unknown(provider, tokens):
    records = oauth_world(make_key_manager(jwks_uri=provider.jwks_uri, organization_id="acme"))
    assert _decide(mint(), records, tokens).code == "token_issuer_unknown"


def test_application_key_of_another_organization_is_unknown(provider, tokens):
    records = [r for r in _world(provider) if getattr(r, "id", "") != "ak-1"]
    records.append(make_application_key(organization_id="acme"))
    assert _decide(mint(), records, tokens).code == "token_client_unknown"


def test_resident_token_for_another_organization_is_refused(provider, tokens):
    from ..oauth import KM

    records = oauth_world(make_key_manager(jwks_uri=provider.jwks_uri, kind=KM.RESIDENT))
    assert _decide(mint(claims(org="acme")), records, tokens).code == "token_client_unknown"
    assert isinstance(_decide(mint(claims(org="default")), records, tokens), Allow)


@pytest.mark.parametrize(
    "km_kwargs,allowed,code,status",
    [({"enabled": False}, (), "key_manager_disabled", 401),
     ({}, ("Other",), "key_manager_not_allowed", 403),
     ({}, ("IdP",), "allowed", None),
     ({"accepts_jwt": False}, (), "token_malformed", 401)],
    ids=["disabled", "not-allowed-for-api", "allowed-by-name", "jwt-not-accepted"],
)
def test_key_manager_enabled_and_allowed(provider, tokens, km_kwargs, allowed, code, status):
    from ..oauth import oauth_api

    records = _world(provider, **km_kwargs)
    records[1] = oauth_api(allowed=allowed)
    decision = _decide(mint(), records, tokens)
    assert decision.code == code
    if status:
        assert decision.http_status == status


def test_revoked_jti(provider, tokens):
    from authz_server.pipeline import decide as _unused  # noqa: F401
    from portcullis.sync.v1 import sync_pb2

    revoked = sync_pb2.RevokedTokenRecord(id="jti-1", organization_id="default", key_manager_id="km-idp",
                                         expires_at_unix=_now() + 600)
    records = oauth_world(make_key_manager(jwks_uri=provider.jwks_uri), extra=(revoked,))
    assert _decide(mint(), records, tokens).code == "token_revoked"
    assert isinstance(_decide(mint(claims(jti="jti-2")), records, tokens), Allow)
    # A revocation of another organization does not apply here.
    revoked.organization_id = "acme"
    assert isinstance(_decide(mint(), records, tokens), Allow)


def test_a_revoked_jwt_stays_refused_within_the_leeway_after_its_exp(provider, tokens):
    """Regression (issue 14): a revocation was honoured only until the token's `exp`, while the
    token itself is accepted until `exp + leeway`: for up to 300 s a revoked JWT was allowed."""
    from portcullis.sync.v1 import sync_pb2

    expired_at = _now() - 100   # accepted by a key manager allowing 300 s of clock skew
    revoked = sync_pb2.RevokedTokenRecord(id="jti-1", organization_id="default", key_manager_id="km-idp",
                                         expires_at_unix=expired_at)
    records = oauth_world(make_key_manager(jwks_uri=provider.jwks_uri, leeway=300), extra=(revoked,))
    token = mint(claims(exp=expired_at, iat=expired_at - 600, nbf=expired_at - 600))
    assert _decide(token, records, tokens).code == "token_revoked"


def test_sandbox_application_key_routes_to_sandbox(provider, tokens):
    decision = _decide(mint(claims(azp="pcc_client-sandbox")), _world(provider), tokens)
    assert isinstance(decision, Allow) and decision.environment.value == "sandbox"


@pytest.mark.parametrize(
    "status,client,expected",
    [("PROD_ONLY_BLOCKED", CLIENT, "subscription_production_blocked"),
     ("PROD_ONLY_BLOCKED", "pcc_client-sandbox", "allowed"),
     ("BLOCKED", CLIENT, "subscription_inactive"),
     (None, CLIENT, "subscription_missing")],
    ids=["prod-only-blocked-production", "prod-only-blocked-sandbox", "blocked", "missing"],
)
def test_subscription_for_token_callers(provider, tokens, status, client, expected):
    from ..factories import Subscription, make_subscription

    records = [r for r in _world(provider) if type(r).__name__ != "Subscription"]
    if status:
        records.append(make_subscription(status=getattr(Subscription, status)))
    assert _decide(mint(claims(azp=client)), records, tokens).code == expected


def test_certificate_key_manager_verifies_without_jwks(tokens):
    records = oauth_world(make_key_manager(certificate_pem=public_pem(EC_KEY).decode()))
    assert isinstance(_decide(mint(key=EC_KEY, alg="ES256", kid="anything"), records, tokens), Allow)


def test_unreachable_jwks_is_key_manager_unavailable(tokens):
    records = oauth_world(make_key_manager(jwks_uri="http://127.0.0.1:9/jwks"))
    decision = _decide(mint(), records, tokens)
    assert decision.code == "key_manager_unavailable" and decision.http_status == 503


def test_no_token_services_is_unavailable_not_allowed(provider):
    decision = _decide(mint(), _world(provider), None)
    assert decision.code == "key_manager_unavailable"


def test_ec_key_on_wrong_curve_is_never_used(provider, tokens):
    p384 = ec.generate_private_key(ec.SECP384R1())
    provider.jwks_document = {"keys": [public_jwk(p384, "ec-1")]}
    token = jwt.encode(claims(), p384, algorithm="ES384", headers={"kid": "ec-1"})
    records = _world(provider, algorithms=("ES256",))
    assert _decide(token, records, tokens).code == "token_algorithm_not_allowed"
