"""A key manager's public keys, from a JWKS document or a PEM certificate / public key.

Only public signature keys survive parsing: symmetric (`oct`) keys, keys with private
members, encryption keys and RSA keys under 2048 bits are dropped (logged). Which key may
verify which algorithm is decided here too, so an RSA key never verifies an ES256 token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

log = logging.getLogger(__name__)

MIN_RSA_BITS = 2048
MAX_KEYS = 100
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


class KeyParseError(ValueError):
    """The keys document or certificate cannot be read at all."""


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None
    key: Any = field(repr=False)      # a cryptography public key
    algorithm: str | None = None      # the JWK's "alg", when it names one

    def can_verify(self, alg: str) -> bool:
        if self.algorithm is not None and self.algorithm != alg:
            return False
        key = self.key
        if alg.startswith(("RS", "PS")):
            return isinstance(key, rsa.RSAPublicKey)
        if alg in _CURVES:
            return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES[alg])
        if alg == "EdDSA":
            return isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))
        return False


@dataclass(frozen=True)
class KeySet:
    by_kid: Mapping[str, VerificationKey] = field(default_factory=lambda: MappingProxyType({}))
    # Used for a token without a kid, or any kid when the key manager has a certificate:
    # the certificate key, else the only kid-less key of the JWKS.
    default: VerificationKey | None = None

    def find(self, kid: str | None) -> VerificationKey | None:
        if kid is not None and kid in self.by_kid:
            return self.by_kid[kid]
        return self.default

    def __len__(self) -> int:
        return len(self.by_kid) + (1 if self.default is not None else 0)


def _public_key(jwk: Mapping[str, Any]) -> Any:
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        raise KeyParseError(f"key type {kty!r} is not an asymmetric signature key")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise KeyParseError("the key carries private or symmetric members")
    if jwk.get("use") not in (None, "sig"):
        raise KeyParseError(f"the key is for use {jwk.get('use')!r}, not signatures")
    try:
        key = jwt.PyJWK(dict(jwk)).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, UnsupportedAlgorithm, ValueError, TypeError) as exc:
        raise KeyParseError(f"unreadable key: {type(exc).__name__}: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise KeyParseError(f"RSA key of {key.key_size} bits is too short")
    return key


def parse_jwks(document: Any, *, source: str = "JWKS") -> KeySet:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyParseError(f"{source} is not a JWK Set (an object with a 'keys' array)")
    by_kid: dict[str, VerificationKey] = {}
    kidless: list[VerificationKey] = []
    for position, jwk in enumerate(document["keys"][:MAX_KEYS]):
        if not isinstance(jwk, dict):
            log.warning("%s: key %d is not an object; skipped", source, position)
            continue
        kid = jwk.get("kid")
        alg = jwk.get("alg")
        try:
            if kid is not None and not isinstance(kid, str):
                raise KeyParseError("kid is not a string")
            if alg is not None and not isinstance(alg, str):
                raise KeyParseError("alg is not a string")
            key = VerificationKey(kid=kid, key=_public_key(jwk), algorithm=alg)
        except KeyParseError as exc:
            log.warning("%s: key %d (kid %r) skipped: %s", source, position, kid if isinstance(kid, str) else "?", exc)
            continue
        if kid is None:
            kidless.append(key)
        elif kid in by_kid:
            # Two keys under one kid: which one a token means is unknowable; use neither.
            log.warning("%s: kid %r appears twice; both keys are ignored", source, kid)
            by_kid[kid] = VerificationKey(kid=kid, key=None, algorithm="-")
        else:
            by_kid[kid] = key
    usable = {kid: key for kid, key in by_kid.items() if key.key is not None}
    return KeySet(by_kid=MappingProxyType(usable), default=kidless[0] if len(kidless) == 1 else None)


def parse_certificate(pem: str) -> KeySet:
    """An X.509 certificate or a bare public key, in PEM."""
    data = pem.encode("ascii", "replace")
    try:
        key = x509.load_pem_x509_certificate(data).public_key()
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyParseError(f"certificate_pem is neither a certificate nor a public key: {type(exc).__name__}") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise KeyParseError(f"certificate RSA key of {key.key_size} bits is too short")
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        raise KeyParseError(f"certificate key type {type(key).__name__} cannot verify JWS")
    return KeySet(default=VerificationKey(kid=None, key=key))


def merge(jwks: KeySet | None, certificate: KeySet | None) -> KeySet:
    """JWKS keys by kid, with the certificate key as the default when there is one."""
    if jwks is None:
        return certificate or KeySet()
    if certificate is None:
        return jwks
    return KeySet(by_kid=jwks.by_kid, default=certificate.default)
