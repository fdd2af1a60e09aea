"""How a backend trusts Portcullis: verify the backend JWT with the published JWKS.

The JWKS (`GET /backend-jwt/jwks.json` on admin_api's REST port) is fetched once and
cached; a token naming an unknown kid triggers one refetch (a rotated key is published
before it signs), at most once per `min_refresh_seconds` so that forged kids cannot make
this backend hammer the JWKS endpoint.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

log = logging.getLogger("sample_backend")

ALGORITHMS = ("ES256", "RS256", "EdDSA")


@dataclass(frozen=True)
class Verification:
    verified: bool
    claims: dict[str, Any] = field(default_factory=dict)
    kid: str = ""
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"verified": self.verified, "kid": self.kid}
        if self.verified:
            answer["claims"] = self.claims
        else:
            answer["error"] = self.error
        return answer


class JwksVerifier:
    def __init__(self, jwks_url: str, *, timeout: float = 2.0, min_refresh_seconds: float = 1.0) -> None:
        self._url = jwks_url
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        with urllib.request.urlopen(self._url, timeout=self._timeout) as answer:  # noqa: S310 (configured URL)
            document = json.loads(answer.read())
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except (KeyError, jwt.PyJWKError) as exc:
                log.warning("JWKS entry skipped: %s", exc)
        self._keys = keys
        log.info("backend JWKS fetched: %d keys", len(keys))

    def _key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            key = self._keys.get(kid)
            if key is None and time.monotonic() - self._fetched_at >= self._min_refresh:
                self._fetched_at = time.monotonic()
                self._fetch()
                key = self._keys.get(kid)
            return key

    def verify(self, token: str) -> Verification:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            return Verification(False, error=f"malformed: {exc}")
        kid = header.get("kid")
        alg = header.get("alg")
        if not isinstance(kid, str) or alg not in ALGORITHMS:
            return Verification(False, error="no kid or an algorithm Portcullis does not sign with")
        try:
            key = self._key(kid)
        except (OSError, ValueError) as exc:
            return Verification(False, kid=kid, error=f"JWKS unavailable: {exc}")
        if key is None:
            return Verification(False, kid=kid, error="unknown kid")
        if key.algorithm_name != alg:
            return Verification(False, kid=kid, error="algorithm does not match the key")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], options={"require": ["exp", "iat", "iss", "jti"]})
        except jwt.InvalidTokenError as exc:
            return Verification(False, kid=kid, error=f"{type(exc).__name__}: {exc}")
        return Verification(True, claims=claims, kid=kid)
