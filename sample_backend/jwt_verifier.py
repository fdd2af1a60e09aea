"""How a backend trusts Portcullis: the reference verifier of the backend JWT.

Backend authors copy this file, so it checks everything a backend must check:

1. **The key**: the header's `kid` names a key of the published JWKS
   (`GET /backend-jwt/jwks.json` on admin_api's REST port); the token's own `jku`, `x5u`,
   `jwk` or `x5c` are never looked at.
2. **The algorithm comes from the key, not the token**: the JWK's `alg` (Portcullis
   publishes one per key) must be an algorithm Portcullis signs with, the header's `alg`
   must equal it, and PyJWT verifies with that one algorithm only. A token cannot choose
   HMAC, `none`, or RSA for an EC key.
3. **The claims**: `iss` is the configured issuer (`PORTCULLIS_BACKEND_JWT_ISSUER`,
   default `portcullis`); `exp`, `iat`, `iss`, `jti` and `sub` are required; `exp` and
   `nbf` hold with a small leeway.
4. **The JWKS cache**: fetched once and kept; refetched when older than
   `max_age_seconds` (a retired key leaves the cache) or for an unknown `kid` (a new key
   is published before it signs), but at most once per `min_refresh_seconds` whatever
   the outcome, so forged kids cannot make the backend hammer the JWKS endpoint; one
   fetch at a time; a failed fetch keeps the last good keys; the document is bounded.

Each failure is reported with its own reason, never raised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

import jwt

log = logging.getLogger("sample_backend")

ALGORITHMS = ("ES256", "RS256", "EdDSA")   # what Portcullis signs backend JWTs with
DEFAULT_ISSUER = "portcullis"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "jti", "sub")
MAX_TOKEN_LENGTH = 16 * 1024
MAX_JWKS_BYTES = 256 * 1024


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


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or read."""


def _parse_keys(document: Any) -> dict[str, jwt.PyJWK]:
    """kid → key, each key bound to its JWK's own `alg`; unusable entries are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("the JWKS is not an object with a 'keys' array")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid, alg, use = entry.get("kid"), entry.get("alg"), entry.get("use", "sig")
        if not isinstance(kid, str) or not kid or alg not in ALGORITHMS or use != "sig":
            log.warning("JWKS entry skipped: a signing key needs a kid and an alg of %s", ", ".join(ALGORITHMS))
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=alg)   # refuses a key whose type does not fit its alg
        except (jwt.PyJWKError, ValueError, TypeError) as exc:
            log.warning("JWKS entry %s skipped: %s", kid, exc)
    return keys


class JwksVerifier:
    def __init__(self, jwks_url: str, *, issuer: str = DEFAULT_ISSUER, leeway_seconds: float = 5.0,
                 timeout: float = 2.0, min_refresh_seconds: float = 1.0, max_age_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = jwks_url
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None    # the last good fetch
        self._tried_at: float | None = None      # the last attempt, good or not: the cool-down
        self._lock = threading.Lock()
        self.fetches = 0

    def _fetch(self) -> None:
        self.fetches += 1
        try:
            with urllib.request.urlopen(self._url, timeout=self._timeout) as answer:  # noqa: S310 (configured URL)
                raw = answer.read(MAX_JWKS_BYTES + 1)
            if len(raw) > MAX_JWKS_BYTES:
                raise JwksUnavailable(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
            keys = _parse_keys(json.loads(raw))
        except (OSError, ValueError) as exc:
            raise JwksUnavailable(f"{type(exc).__name__}: {exc}") from None
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("backend JWKS fetched: %d keys", len(keys))

    def _key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:   # one fetch at a time; the others wait for its keys
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
            cooling = self._tried_at is not None and now - self._tried_at < self._min_refresh
            if (stale or kid not in self._keys) and not cooling:
                self._tried_at = now
                try:
                    self._fetch()
                except JwksUnavailable as exc:
                    if self._fetched_at is None:
                        raise
                    log.warning("backend JWKS refresh failed, the last good keys stay: %s", exc)
            elif self._fetched_at is None:
                raise JwksUnavailable("not fetched yet; the next attempt comes after the cool-down")
            return self._keys.get(kid)

    def verify(self, token: str) -> Verification:
        if len(token) > MAX_TOKEN_LENGTH:
            return Verification(False, error=f"malformed: longer than {MAX_TOKEN_LENGTH} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            return Verification(False, error=f"malformed: {exc}")
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or not kid:
            return Verification(False, error="no kid: Portcullis names the key of every backend JWT")
        if alg not in ALGORITHMS:
            return Verification(False, kid=kid, error=f"algorithm {alg!r} is not one Portcullis signs with")
        try:
            key = self._key(kid)
        except JwksUnavailable as exc:
            return Verification(False, kid=kid, error=f"JWKS unavailable: {exc}")
        if key is None:
            return Verification(False, kid=kid, error="unknown kid")
        if key.algorithm_name != alg:
            return Verification(False, kid=kid, error=f"algorithm {alg} does not match the key's {key.algorithm_name}")
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name], issuer=self._issuer,
                                leeway=self._leeway, options={"require": list(REQUIRED_CLAIMS)})
        except jwt.InvalidTokenError as exc:
            return Verification(False, kid=kid, error=f"{type(exc).__name__}: {exc}")
        return Verification(True, claims=claims, kid=kid)
