"""The sample backend's verifier: JWKS fetched once, refetched for an unknown kid (rate
limited), and every failure reported rather than raised."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from sample_backend.jwt_verifier import JwksVerifier

KEYS = {"k1": ec.generate_private_key(ec.SECP256R1()), "k2": ec.generate_private_key(ec.SECP256R1())}


class _Jwks:
    def __init__(self) -> None:
        self.published = ["k1"]
        self.without_alg: set[str] = set()   # kids published without an "alg"
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                keys = [dict(ECAlgorithm.to_jwk(KEYS[k].public_key(), as_dict=True), kid=k) for k in jwks.published]
                for key in keys:
                    if key["kid"] not in jwks.without_alg:
                        key["alg"] = "ES256"
                body = json.dumps({"keys": keys}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backend-jwt/jwks.json"


@pytest.fixture
def jwks():
    server = _Jwks()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _token(kid: str, **claims) -> str:
    now = int(time.time())
    payload = {"iss": "portcullis", "iat": now, "exp": now + 60, "jti": "j", "sub": "alice", **claims}
    return jwt.encode(payload, KEYS[kid], algorithm="ES256", headers={"kid": kid})


def test_a_valid_token_is_verified_and_the_jwks_fetched_once(jwks):
    verifier = JwksVerifier(jwks.url)
    for _ in range(3):
        result = verifier.verify(_token("k1"))
        assert result.verified and result.claims["sub"] == "alice"
    assert jwks.fetches == 1


def test_an_unknown_kid_refetches_once_per_interval(jwks):
    verifier = JwksVerifier(jwks.url, min_refresh_seconds=3600)
    assert verifier.verify(_token("k1")).verified
    jwks.published.append("k2")
    assert verifier.verify(_token("k2")).as_json() == {"verified": False, "kid": "k2", "error": "unknown kid"}
    assert jwks.fetches == 1
    eager = JwksVerifier(jwks.url, min_refresh_seconds=0)
    assert eager.verify(_token("k1")).verified and eager.verify(_token("k2")).verified


@pytest.mark.parametrize("token, error", [
    pytest.param(lambda: "not-a-jwt", "malformed", id="malformed"),
    pytest.param(lambda: jwt.encode({"exp": 1}, "s" * 32, algorithm="HS256", headers={"kid": "k1"}), "algorithm",
                 id="hmac"),
    pytest.param(lambda: _token("k1", exp=int(time.time()) - 10), "ExpiredSignatureError", id="expired"),
    pytest.param(lambda: _token("k1")[:-4] + "AAAA", "InvalidSignatureError", id="bad-signature"),
])
def test_failures_are_reported(jwks, token, error):
    # Tokens are made when the test runs: made at collection, they expire in a long suite.
    result = JwksVerifier(jwks.url).verify(token())
    assert not result.verified and error in result.error


# --- issue 14: the reference a backend should follow -------------------------------------

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("token, error", [
    pytest.param(lambda: _token("k1", iss="https://evil.example"), "InvalidIssuerError", id="wrong-issuer"),
    pytest.param(lambda: jwt.encode({"iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "j", "sub": "a"},
                            KEYS["k1"], algorithm="ES256", headers={"kid": "k1"}), "iss", id="no-issuer"),
    pytest.param(lambda: jwt.encode({"iss": "portcullis", "iat": int(time.time()), "jti": "j", "sub": "a"},
                            KEYS["k1"], algorithm="ES256", headers={"kid": "k1"}), "exp", id="no-exp"),
    pytest.param(lambda: jwt.encode({"iss": "portcullis", "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "j"},
                            KEYS["k1"], algorithm="ES256", headers={"kid": "k1"}), "sub", id="no-sub"),
    pytest.param(lambda: _token("k1", nbf=int(time.time()) + 600), "ImmatureSignatureError", id="not-yet-valid"),
    # The header says RS256 (signed with an RSA key): the JWK of k1 says ES256, which wins.
    pytest.param(lambda: jwt.encode({"iss": "portcullis", "iat": 1, "exp": int(time.time()) + 60, "jti": "j", "sub": "a"},
                            RSA_KEY, algorithm="RS256", headers={"kid": "k1"}), "does not match the key's ES256",
                 id="algorithm-from-the-header"),
    pytest.param(lambda: jwt.encode({"iss": "portcullis", "exp": 1}, "", algorithm="none", headers={"kid": "k1"}),
                 "algorithm 'none'", id="none"),
    pytest.param(lambda: "eyJ" + "A" * (20 * 1024), "longer than", id="huge"),
    pytest.param(lambda: jwt.encode({"iss": "portcullis"}, KEYS["k1"], algorithm="ES256"), "no kid", id="no-kid"),
])
def test_the_reference_verifier_refuses(jwks, token, error):
    result = JwksVerifier(jwks.url).verify(token())
    assert not result.verified and error in result.error, result.error


def test_the_issuer_is_the_configured_one(jwks):
    token = _token("k1", iss="https://gw.example.com")
    assert JwksVerifier(jwks.url, issuer="https://gw.example.com").verify(token).verified
    assert not JwksVerifier(jwks.url).verify(token).verified


def test_a_jwk_without_an_algorithm_is_not_used(jwks):
    jwks.published, jwks.without_alg = ["k1", "k2"], {"k1"}
    verifier = JwksVerifier(jwks.url)
    assert verifier.verify(_token("k1")).error == "unknown kid"
    assert verifier.verify(_token("k2")).verified


def test_forged_kids_cost_one_fetch_per_cool_down(jwks):
    clock = _Clock()
    verifier = JwksVerifier(jwks.url, min_refresh_seconds=10, clock=clock)
    for number in range(50):
        assert verifier.verify(_forged_kid(f"forged-{number}")).error == "unknown kid"
    assert jwks.fetches == 1
    clock.now += 10
    verifier.verify(_forged_kid("forged-again"))
    assert jwks.fetches == 2


def _forged_kid(kid: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": "portcullis", "iat": now, "exp": now + 60, "jti": "j", "sub": "x"}, KEYS["k1"],
                      algorithm="ES256", headers={"kid": kid})


def test_the_cache_ages_out_a_retired_key_and_keeps_the_last_good_keys_on_failure(jwks):
    clock = _Clock()
    verifier = JwksVerifier(jwks.url, min_refresh_seconds=10, max_age_seconds=300, clock=clock)
    jwks.published = ["k1", "k2"]
    assert verifier.verify(_token("k2")).verified
    jwks.published = ["k1"]            # k2 retired
    clock.now += 299
    assert verifier.verify(_token("k2")).verified and jwks.fetches == 1   # still cached
    clock.now += 1
    assert verifier.verify(_token("k2")).error == "unknown kid" and jwks.fetches == 2
    # The JWKS endpoint goes away: the cached keys keep verifying, one attempt per cool-down.
    jwks.server.shutdown()
    jwks.server.server_close()
    clock.now += 300
    assert verifier.verify(_token("k1")).verified
    assert verifier.verify(_token("k1")).verified


def test_a_jwks_never_fetched_is_unavailable_not_an_unknown_kid():
    verifier = JwksVerifier("http://127.0.0.1:9/backend-jwt/jwks.json", timeout=0.5)
    assert "JWKS unavailable" in verifier.verify(_token("k1")).error
    assert "JWKS unavailable" in verifier.verify(_token("k1")).error   # within the cool-down: no second try
    assert verifier.fetches == 1
