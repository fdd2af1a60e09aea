"""Named security regressions: each test is an attack that must keep failing."""

import json

from portcullis.admin.v1 import admin_pb2

from authz_server import denials
from authz_server.decision_log import log_decision
from authz_server.envoy_adapter import to_check_response, to_request_context
from authz_server.index import PolicyStore
from authz_server.pipeline import Allow, decide
from portcullis_shared.credentials import credential_hash

from .checks import check_request
from .factories import NOW, PIZZA_BASE, PROD_KEY, entity, index_of, make_api, make_key, pizza_world


def _decide(path, headers=None, records=None, peer="203.0.113.7", trusted_hops=0):
    """Like the servicer: parse (a malformed request is already a denial), then decide."""
    index = index_of(*(records or pizza_world()))
    try:
        context = to_request_context(check_request(path, headers=headers, peer=peer), trusted_hops=trusted_hops)
    except denials.BadRequest as denial:
        return None, denial
    return context, decide(context, index, NOW)


def _with_key(**kwargs):
    records = pizza_world()
    records[4] = make_key(**kwargs)
    return records


def test_wildcard_referrer_does_not_admit_suffix_lookalike():
    records = _with_key(allowed_referrers=["*.example.com/*"])
    for referer in ("https://example.com.evil.io/", "https://evilexample.com/", "https://example.com/",
                    "https://www.example.com@evil.io/", "https://evil.io/www.example.com/"):
        _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY, "referer": referer}, records)
        assert decision.code == "referer_not_allowed", referer


def test_spoofed_forwarded_for_is_ignored_without_trusted_hops():
    records = _with_key(allowed_ips=["198.51.100.1"])
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY, "x-forwarded-for": "198.51.100.1"}, records)
    assert decision.code == "ip_not_allowed"


def test_client_cannot_prepend_to_forwarded_for_past_trusted_hop():
    records = _with_key(allowed_ips=["198.51.100.1"])
    headers = {"apikey": PROD_KEY, "x-forwarded-for": "198.51.100.1, 6.6.6.6"}
    _, decision = _decide(PIZZA_BASE + "/menu", headers, records, peer="10.0.0.1", trusted_hops=1)
    assert decision.code == "ip_not_allowed"


def test_ipv4_mapped_peer_does_not_escape_ipv4_restriction():
    records = _with_key(allowed_ips=["10.0.0.0/8"])
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY}, records, peer="::ffff:203.0.113.7")
    assert decision.code == "ip_not_allowed"


def test_broken_ip_restriction_does_not_become_unrestricted():
    records = _with_key(allowed_ips=["10.0.0.300"])
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY}, records)
    assert decision.code == "ip_not_allowed"


def test_broken_referrer_restriction_does_not_become_unrestricted():
    records = _with_key(allowed_referrers=["*example.com/*"])
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY, "referer": "https://example.com/"}, records)
    assert decision.code == "referer_not_allowed"


def test_client_sent_environment_header_is_overwritten_not_trusted():
    context, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY, "x-portcullis-environment": "sandbox"})
    response = to_check_response(decision, context)
    assert [(h.header.key, h.header.value) for h in response.ok_response.headers] == [("x-portcullis-environment", "production")]


def test_encoded_query_param_name_is_still_stripped():
    context, decision = _decide(PIZZA_BASE + "/menu?%61pikey=" + PROD_KEY)
    assert isinstance(decision, Allow)
    assert "%61pikey" in to_check_response(decision, context).ok_response.query_parameters_to_remove


def test_open_resource_cannot_be_reached_by_dot_segments():
    _, decision = _decide(PIZZA_BASE + "/open/../menu")
    assert decision.code == "bad_request"


def test_encoded_slash_cannot_smuggle_a_segment():
    _, decision = _decide(PIZZA_BASE + "/open%2F..%2Fmenu")
    assert decision.code == "bad_request"


def test_base_path_prefix_needs_a_segment_boundary():
    _, decision = _decide("/pizzashack/1.0.0evil/menu", {"apikey": PROD_KEY})
    assert decision.code == "api_not_found"


def test_key_for_another_api_is_refused():
    records = pizza_world() + [make_api("api-other", "/other/1.0"), make_key("key-other", "pck_other", api_id="api-other")]
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": "pck_other"}, records)
    assert decision.code == "api_key_wrong_api"


def test_regenerated_old_value_is_revoked_immediately():
    store = PolicyStore()
    store.apply_snapshot([entity(r) for r in pizza_world()], 1)
    store.apply_upsert(entity(make_key(revoked=True)), 2)
    store.apply_upsert(entity(make_key("key-new", "pck_new")), 3)
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}))
    assert decide(context, store.current, NOW).code == "api_key_revoked"
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers={"apikey": "pck_new"}))
    assert isinstance(decide(context, store.current, NOW), Allow)


def test_second_key_value_in_query_is_ambiguous_not_first_wins():
    _, decision = _decide(PIZZA_BASE + "/menu?apikey=" + PROD_KEY + "&apikey=pck_other")
    assert decision.code == "credential_ambiguous"


def test_key_hash_lookup_is_case_insensitive_on_the_record_side():
    record = make_key()
    record.key_hash = credential_hash(PROD_KEY).upper()
    records = pizza_world()
    records[4] = record
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY}, records)
    assert isinstance(decision, Allow)


def test_unknown_lifecycle_state_is_not_served():
    records = pizza_world()
    records[1] = make_api(state=99)
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY}, records)
    assert decision.code == "api_not_deployed"


def test_api_with_no_schemes_admits_no_credential():
    records = pizza_world()
    records[1] = make_api(security=admin_pb2.SecuritySchemes())
    _, decision = _decide(PIZZA_BASE + "/menu", {"apikey": PROD_KEY}, records)
    assert decision.code == "credential_missing"


def test_deny_body_never_echoes_the_key():
    context, decision = _decide(PIZZA_BASE + "/menu?apikey=pck_secret_value")
    body = to_check_response(decision, context).denied_response.body
    assert "pck_secret_value" not in body and json.loads(body)["code"] == "api_key_invalid"


def test_decision_log_never_contains_the_key(caplog):
    import logging

    context, decision = _decide(PIZZA_BASE + "/menu?apikey=" + PROD_KEY, {"apikey": PROD_KEY})
    with caplog.at_level(logging.INFO, logger="authz_server.decision"):
        log_decision(decision, context, 0.001)
    assert "outcome=allow" in caplog.text and "reason=allowed" in caplog.text
    assert PROD_KEY not in caplog.text


def test_truncated_percent_escape_in_key_is_bad_request():
    _, decision = _decide(PIZZA_BASE + "/menu?apikey=%E0%A4%A", {})
    assert decision.code == "bad_request"


# --- OAuth2 tokens (issue 3) -------------------------------------------------------------------

import time as _time

import jwt as _jwt
import pytest as _pytest

from .oauth import (
    EC_KEY as _EC_KEY,
    RSA_KEY as _RSA_KEY,
    b64 as _b64,
    claims as _claims,
    forged as _forged,
    make_key_manager as _make_key_manager,
    mint as _mint,
    oauth_world as _oauth_world,
    public_jwk as _public_jwk,
    public_pem as _public_pem,
)


def _token_decision(token, provider, tokens, **km_kwargs):
    records = _oauth_world(_make_key_manager(jwks_uri=provider.jwks_uri, **km_kwargs))
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {token}"}))
    return context, decide(context, index_of(*records), _time.time(), tokens)


@_pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@_pytest.mark.parametrize("signature", [b"", b"x"], ids=["unsigned", "junk-signature"])
def test_alg_none_in_any_case_is_refused(provider, tokens, alg, signature):
    token = _forged({"alg": alg, "kid": "rsa-1", "typ": "JWT"}, _claims(), signature)
    # Even a key manager whose configured list names "none" never accepts it.
    _, decision = _token_decision(token, provider, tokens, algorithms=("RS256", alg))
    assert decision.code == "token_algorithm_not_allowed"
    assert provider.jwks_fetches == 0


def test_hs256_signed_with_the_public_key_is_refused(provider, tokens):
    pem = _public_pem(_RSA_KEY)
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = _b64(__import__("json").dumps(header)) + "." + _b64(__import__("json").dumps(_claims()))
    import hashlib
    import hmac

    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + _b64(signature)
    _, decision = _token_decision(token, provider, tokens, algorithms=("RS256", "HS256"))
    assert decision.code == "token_algorithm_not_allowed"


@_pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "rsa-1\x00", "http://evil.example/jwks"],
                          ids=["path-traversal", "sql", "nul", "url"])
def test_hostile_kid_is_just_an_unknown_kid(provider, tokens, kid):
    _, decision = _token_decision(_mint(kid=kid), provider, tokens)
    assert decision.code == "token_key_unknown"


@_pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c"])
def test_key_pointing_headers_are_never_trusted(provider, tokens, header):
    from cryptography.hazmat.primitives.asymmetric import rsa

    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    values = {
        "jku": provider.base_url + "/attacker-jwks",
        "x5u": provider.base_url + "/attacker-cert",
        "jwk": _public_jwk(attacker, "rsa-1"),
        "x5c": [_b64(_public_pem(attacker))],
    }
    token = _mint(key=attacker, headers={header: values[header]})
    _, decision = _token_decision(token, provider, tokens)
    assert decision.code == "token_signature_invalid"
    assert provider.jwks_fetches == 1   # only the configured JWKS was fetched


def test_unknown_crit_is_refused_even_when_signed(provider, tokens):
    _, decision = _token_decision(_mint(headers={"crit": ["x-portcullis"], "x-portcullis": True}), provider, tokens)
    assert decision.code == "token_malformed"


def test_flood_of_bogus_kids_does_not_hammer_the_provider(provider, tokens):
    for n in range(50):
        _, decision = _token_decision(_mint(kid=f"bogus-{n}"), provider, tokens)
        assert decision.code == "token_key_unknown"
    assert provider.jwks_fetches == 2


def test_token_from_another_organizations_key_manager_is_not_accepted(provider, tokens):
    records = _oauth_world(_make_key_manager(jwks_uri=provider.jwks_uri, organization_id="acme"))
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {_mint()}"}))
    assert decide(context, index_of(*records), _time.time(), tokens).code == "token_issuer_unknown"


def test_deny_body_and_decision_log_never_contain_the_token(provider, tokens, caplog):
    import logging

    token = _mint(_claims(exp=int(_time.time()) - 3600))
    context, decision = _token_decision(token, provider, tokens)
    response = to_check_response(decision, context)
    with caplog.at_level(logging.INFO):
        log_decision(decision, context, 0.001)
    assert decision.code == "token_expired"
    everything = response.SerializeToString().decode("latin-1") + caplog.text
    assert token not in everything and token.split(".")[2] not in everything


def test_allow_log_names_the_kind_and_client_but_not_the_token(provider, tokens, caplog):
    import logging

    token = _mint()
    context, decision = _token_decision(token, provider, tokens)
    with caplog.at_level(logging.INFO, logger="authz_server.decision"):
        log_decision(decision, context, 0.001)
    assert "credential_kind=oauth2_jwt" in caplog.text and "consumer_key=pcc_client-one" in caplog.text
    assert token not in caplog.text
    metadata = dict(to_check_response(decision, context).dynamic_metadata)
    assert (metadata["credential_kind"], metadata["key_manager_id"], metadata["consumer_key"]) == (
        "oauth2_jwt", "km-idp", "pcc_client-one")


def test_api_key_wins_over_a_bearer_token_when_both_are_sent(provider, tokens):
    from .factories import make_key

    records = _oauth_world(_make_key_manager(jwks_uri=provider.jwks_uri), extra=(make_key(),))
    headers = {"apikey": PROD_KEY, "authorization": "Bearer not-even-a-token"}
    context = to_request_context(check_request(PIZZA_BASE + "/menu", headers=headers))
    decision = decide(context, index_of(*records), _time.time(), tokens)
    assert isinstance(decision, Allow) and decision.credential_kind == "api_key"


def test_two_different_bearer_tokens_are_ambiguous(provider, tokens):
    from .factories import make_request

    records = _oauth_world(_make_key_manager(jwks_uri=provider.jwks_uri))
    request = make_request(PIZZA_BASE + "/menu", headers={"authorization": [f"Bearer {_mint()}", "Bearer other"]})
    assert decide(request, index_of(*records), _time.time(), tokens).code == "credential_ambiguous"


def test_es256_token_cannot_be_verified_with_an_rsa_key_confusion(provider, tokens):
    token = _jwt.encode(_claims(), _EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"})
    _, decision = _token_decision(token, provider, tokens)
    assert decision.code == "token_signature_invalid"
