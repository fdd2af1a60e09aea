"""The sample backend's verifier: JWKS fetched once, refetched for an unknown kid (rate
limited), and every failure reported rather than raised."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from sample_backend.jwt_verifier import JwksVerifier

KEYS = {"k1": ec.generate_private_key(ec.SECP256R1()), "k2": ec.generate_private_key(ec.SECP256R1())}


class _Jwks:
    def __init__(self) -> None:
        self.published = ["k1"]
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": [dict(ECAlgorithm.to_jwk(KEYS[k].public_key(), as_dict=True), kid=k,
                                                 alg="ES256") for k in jwks.published]}).encode()
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
    pytest.param("not-a-jwt", "malformed", id="malformed"),
    pytest.param(jwt.encode({"exp": 1}, "s" * 32, algorithm="HS256", headers={"kid": "k1"}), "algorithm",
                 id="hmac"),
    pytest.param(_token("k1", exp=int(time.time()) - 10), "ExpiredSignatureError", id="expired"),
    pytest.param(_token("k1")[:-4] + "AAAA", "InvalidSignatureError", id="bad-signature"),
])
def test_failures_are_reported(jwks, token, error):
    result = JwksVerifier(jwks.url).verify(token)
    assert not result.verified and error in result.error
