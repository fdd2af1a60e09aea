"""Hostile bearer tokens, each a named row, through the real ext_authz gRPC servicer
(127.0.0.1:0) with real token services against the in-test identity provider.

Every row asserts the exact reason code; none may be an allow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from envoy.config.core.v3 import base_pb2

from tests.authz_server.checks import check_request
from tests.authz_server.factories import PIZZA_BASE
from tests.authz_server.oauth import (
    EC_KEY,
    ISSUER,
    RSA_KEY,
    b64,
    claims,
    forged,
    make_key_manager,
    mint,
    oauth_world,
    public_jwk,
    public_pem,
    services,
)

from .attacker import AttackerServer
from .grpc_check import Served, serve

ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def attacker():
    server = AttackerServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def served():
    tokens = services(timeout=1.0, min_refresh=10.0)
    running = serve(tokens=tokens)
    yield running
    running.close()
    tokens.stop()


@pytest.fixture
def check(served: Served, provider) -> Callable[..., str]:
    """Loads the OAuth2 world with the provider's JWKS (HS256 and "none" listed on purpose:
    they must stay refused) and returns `reason(token)`."""
    key_manager = make_key_manager(jwks_uri=provider.jwks_uri, algorithms=("RS256", "ES256", "HS256", "none"))
    served.load(oauth_world(key_manager))

    def reason(token: str | bytes) -> str:
        if isinstance(token, bytes):
            raw = base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key="authorization", raw_value=b"Bearer " + token)])
            request = check_request(PIZZA_BASE + "/menu", header_map=[])
            request.attributes.request.http.header_map.CopyFrom(raw)
        else:
            request = check_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {token}"})
        return served.reason(request)

    return reason


def _hs256(secret: bytes, header: dict[str, Any] | None = None) -> str:
    header = header or {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = b64(json.dumps(header)) + "." + b64(json.dumps(claims()))
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def _raw_json(header: str, payload: str, signature: bytes = b"sig") -> str:
    return ".".join((b64(header), b64(payload), b64(signature)))


def _resign(token: str, signature: bytes) -> str:
    head, body, _ = token.split(".")
    return f"{head}.{body}.{b64(signature)}"


NOW = int(time.time())
VALID_HEADER = json.dumps({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"})
VALID_PAYLOAD = json.dumps(claims())

# (id, token builder, expected reason). Builders run at test time (fresh clock).
TOKEN_CASES: list[tuple[str, Callable[[], str | bytes], str]] = [
    # alg none, any spelling, with and without a signature
    *[(f"alg-{alg}-{sig_id}", (lambda alg=alg, sig=sig: forged({"alg": alg, "kid": "rsa-1"}, claims(), sig)),
       "token_algorithm_not_allowed")
      for alg in ("none", "None", "NONE", "nOnE") for sig_id, sig in (("unsigned", b""), ("signed", b"x"))],
    # HMAC keyed with the key manager's public key, in each form a confused verifier might use
    ("hs256-public-pem", lambda: _hs256(public_pem(RSA_KEY)), "token_algorithm_not_allowed"),
    ("hs256-public-jwk-json", lambda: _hs256(json.dumps(public_jwk(RSA_KEY, "rsa-1")).encode()), "token_algorithm_not_allowed"),
    ("hs384-ec-public-pem", lambda: jwt.encode(claims(), public_pem(EC_KEY).decode()[:64], algorithm="HS384",
                                                headers={"kid": "ec-1"}), "token_algorithm_not_allowed"),
    ("alg-not-a-string", lambda: forged({"alg": ["RS256"], "kid": "rsa-1"}, claims()), "token_malformed"),
    ("alg-missing", lambda: forged({"kid": "rsa-1"}, claims()), "token_malformed"),
    ("alg-unknown", lambda: forged({"alg": "XS999", "kid": "rsa-1"}, claims()), "token_algorithm_not_allowed"),
    # kid with path or SQL-like content is only ever an unknown kid
    ("kid-path-traversal", lambda: mint(kid="../../../../etc/passwd"), "token_key_unknown"),
    ("kid-sql", lambda: mint(kid="' OR '1'='1' --"), "token_key_unknown"),
    ("kid-sql-union", lambda: mint(kid="x' UNION SELECT key FROM keys --"), "token_key_unknown"),
    ("kid-nul", lambda: mint(kid="rsa-1\x00"), "token_key_unknown"),
    ("kid-url", lambda: mint(kid="http://127.0.0.1:9/jwks"), "token_key_unknown"),
    ("kid-not-a-string", lambda: forged({"alg": "RS256", "kid": {"$ne": ""}}, claims()), "token_malformed"),
    ("kid-unknown", lambda: mint(kid="never-published"), "token_key_unknown"),
    # unknown critical extensions
    ("crit-unknown-signed", lambda: mint(headers={"crit": ["x-portcullis"], "x-portcullis": True}), "token_malformed"),
    ("crit-empty", lambda: mint(headers={"crit": []}), "token_malformed"),
    ("crit-b64-false", lambda: mint(headers={"crit": ["b64"], "b64": False}), "token_malformed"),
    # time claims
    ("expired", lambda: mint(claims(exp=int(time.time()) - 3600)), "token_expired"),
    ("expired-beyond-leeway", lambda: mint(claims(exp=int(time.time()) - 31)), "token_expired"),
    ("nbf-future", lambda: mint(claims(nbf=int(time.time()) + 3600)), "token_not_yet_valid"),
    ("iat-future", lambda: mint(claims(iat=int(time.time()) + 3600)), "token_not_yet_valid"),
    ("exp-missing", lambda: mint(claims(exp=None)), "token_claims_invalid"),
    ("exp-string", lambda: mint(claims(exp="9999999999")), "token_claims_invalid"),
    ("exp-bool", lambda: mint(claims(exp=True)), "token_claims_invalid"),
    ("nbf-nan", lambda: forged({"alg": "RS256", "kid": "rsa-1"}, {**claims(), "nbf": "NaN"}), "token_claims_invalid"),
    # issuer
    ("iss-wrong", lambda: mint(claims(iss="https://evil.example.test")), "token_issuer_unknown"),
    ("iss-case-variant", lambda: mint(claims(iss=ISSUER.upper())), "token_issuer_unknown"),
    ("iss-trailing-slash", lambda: mint(claims(iss=ISSUER + "/")), "token_issuer_unknown"),
    ("iss-missing", lambda: mint(claims(iss=None)), "token_claims_invalid"),
    ("iss-not-a-string", lambda: forged({"alg": "RS256", "kid": "rsa-1"}, claims(iss=[ISSUER])), "token_claims_invalid"),
    # signatures
    ("signature-stripped", lambda: mint().rsplit(".", 1)[0] + ".", "token_signature_invalid"),
    ("signature-and-dot-stripped", lambda: mint().rsplit(".", 1)[0], "token_malformed"),
    ("signature-truncated", lambda: mint()[:-10], "token_signature_invalid"),
    ("signature-of-another-key", lambda: mint(key=ATTACKER_KEY), "token_signature_invalid"),
    ("payload-swapped", lambda: ".".join((mint().split(".")[0], b64(json.dumps(claims(sub="mallory"))), mint().split(".")[2])),
     "token_signature_invalid"),
    ("ecdsa-r-s-zero", lambda: _resign(mint(alg="ES256", key=EC_KEY, kid="ec-1"), b"\x00" * 64), "token_signature_invalid"),
    ("ecdsa-r-s-order", lambda: _resign(mint(alg="ES256", key=EC_KEY, kid="ec-1"), bytes.fromhex(
        "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551") * 2), "token_signature_invalid"),
    ("ecdsa-der-signature", lambda: _resign(mint(alg="ES256", key=EC_KEY, kid="ec-1"), b"\x30\x06\x02\x01\x00\x02\x01\x00"),
     "token_signature_invalid"),
    ("es256-under-rsa-kid", lambda: mint(alg="ES256", key=EC_KEY, kid="rsa-1"), "token_signature_invalid"),
    # not base64url / not JSON
    ("header-not-base64url", lambda: "eyJ*bad*." + b64(VALID_PAYLOAD) + "." + b64(b"sig"), "token_malformed"),
    ("header-standard-base64", lambda: "eyJ+/+/." + b64(VALID_PAYLOAD) + "." + b64(b"sig"), "token_malformed"),
    ("payload-impossible-length", lambda: b64(VALID_HEADER) + ".abcde." + b64(b"sig"), "token_malformed"),
    ("header-padding", lambda: b64(VALID_HEADER) + "==." + b64(VALID_PAYLOAD) + "." + b64(b"sig"), "token_malformed"),
    ("header-not-json", lambda: _raw_json('{"alg": "RS256", ', VALID_PAYLOAD), "token_malformed"),
    ("header-json-array", lambda: _raw_json('["alg", "RS256"]', VALID_PAYLOAD), "token_malformed"),
    ("payload-not-json", lambda: _raw_json(VALID_HEADER, "{not json"), "token_malformed"),
    ("payload-json-string", lambda: _raw_json(VALID_HEADER, '"iss"'), "token_malformed"),
    ("payload-nan", lambda: _raw_json(VALID_HEADER, '{"iss": NaN}'), "token_malformed"),
    ("payload-deep-nesting", lambda: _raw_json(VALID_HEADER, "[" * 100_000 + "]" * 100_000), "token_malformed"),
    ("payload-not-utf8", lambda: ".".join((b64(VALID_HEADER), b64(b'{"iss": "\xff\xfe"}'), b64(b"sig"))), "token_malformed"),
    ("header-utf16", lambda: ".".join((b64(VALID_HEADER.encode("utf-16")), b64(VALID_PAYLOAD), b64(b"sig"))), "token_malformed"),
    # duplicate members: which one wins differs between parsers, so neither may
    ("duplicate-iss", lambda: _raw_json(VALID_HEADER, VALID_PAYLOAD[:-1] + ', "iss": "https://evil.example.test"}'),
     "token_malformed"),
    ("duplicate-exp", lambda: _raw_json(VALID_HEADER, VALID_PAYLOAD[:-1] + f', "exp": {NOW + 10**6}}}'), "token_malformed"),
    ("duplicate-alg", lambda: _raw_json(VALID_HEADER[:-1] + ', "alg": "none"}', VALID_PAYLOAD), "token_malformed"),
    # size and shape
    ("one-mebibyte", lambda: "eyJ" + "A" * (1024 * 1024) + ".e30.c2ln", "token_malformed"),
    ("one-mebibyte-valid-shape", lambda: mint(claims(pad="x" * (1024 * 1024))), "token_malformed"),
    ("many-dots", lambda: "eyJhbGciOiJSUzI1NiJ9" + "." * 10_000, "token_malformed"),
    ("four-dots", lambda: mint() + ".x", "token_malformed"),
    ("jwe-five-parts", lambda: "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "credential_unsupported"),
    ("only-dots", lambda: "..", "token_malformed"),
    ("empty-segments", lambda: "eyJ..", "token_malformed"),
    ("not-utf8-bytes", lambda: b"eyJ\xff\xfe.\xc3\x28.sig", "token_malformed"),
    ("not-utf8-opaque", lambda: b"\x80\x81\x82", "token_malformed"),
    ("control-characters", lambda: "eyJhbGciOiJub25lIn0\x01.e30.", "token_malformed"),
    ("opaque-no-key-manager-takes-it", lambda: "an-opaque-token-nobody-accepts", "token_malformed"),
]


@pytest.mark.parametrize(("build", "expected"), [(build, code) for _, build, code in TOKEN_CASES],
                         ids=[case_id for case_id, _, _ in TOKEN_CASES])
def test_hostile_token_is_denied_with_its_reason(check, build, expected):
    assert check(build()) == expected


def test_a_valid_token_is_allowed(check):
    """The control row: the same world, an honest token."""
    assert check(mint()) == "allowed"
    assert check(mint(alg="ES256", key=EC_KEY, kid="ec-1")) == "allowed"


KEY_POINTERS = ["jku", "x5u", "jwk", "x5c"]


@pytest.mark.parametrize("kid", ["rsa-1", "attacker-kid"], ids=["published-kid", "unpublished-kid"])
@pytest.mark.parametrize("pointer", KEY_POINTERS)
def test_headers_that_supply_a_key_are_ignored_and_never_fetched(check, attacker, provider, pointer, kid):
    values = {
        "jku": attacker.url + "/jwks",
        "x5u": attacker.url + "/cert.pem",
        "jwk": public_jwk(ATTACKER_KEY, kid),
        "x5c": [base64.b64encode(public_pem(ATTACKER_KEY)).decode()],
    }
    before = attacker.requests
    token = mint(key=ATTACKER_KEY, kid=kid, headers={pointer: values[pointer]})
    assert check(token) == ("token_signature_invalid" if kid == "rsa-1" else "token_key_unknown")
    assert attacker.requests == before, "a key was fetched from where the token pointed"
