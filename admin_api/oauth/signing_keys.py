"""Signing keys of resident JWT access tokens: generation, rotation with overlap, JWKS.

One key signs at a time (the newest activated, unretired one). Rotating activates a new
key and retires the previous one: it signs no more but stays in the JWKS until every
token it signed has expired (the latest expiry among them, plus a margin for clock
leeway), after which it is pruned. Private keys are stored encrypted with the KEK and
never leave this module except as a loaded key object used to sign.

Deployment-wide: every organization's resident key manager has the same issuer (the
public URL), so they share one JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from admin_api.crypto.kek import Kek
from admin_api.db.oauth_models import OAuthToken, SigningKey
from admin_api.db.types import utcnow
from admin_api.errors import InvalidArgument
from admin_api.store.unit_of_work import Store

DEFAULT_ALGORITHM = "ES256"
SUPPORTED_ALGORITHMS = ("ES256", "RS256")
RSA_KEY_BITS = 2048
# Beyond the last token's expiry: covers the validators' clock leeway (at most 300 s).
RETIREMENT_MARGIN = timedelta(seconds=300)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a signing key (never its private part)."""

    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    expires_at: datetime | None

    @property
    def active(self) -> bool:
        return self.activated_at is not None and self.retired_at is None


@dataclass(frozen=True)
class Signer:
    kid: str
    algorithm: str
    private_key: PrivateKey


def _aad(kid: str) -> bytes:
    return f"signing_key:{kid}".encode()


def _generate(algorithm: str) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    raise InvalidArgument(f"signing algorithm must be one of {', '.join(SUPPORTED_ALGORITHMS)}, "
                          f"not {algorithm!r}", field="algorithm")


def _public_jwk(private_key: PrivateKey, algorithm: str) -> dict[str, Any]:
    codec = ECAlgorithm if algorithm == "ES256" else RSAAlgorithm
    jwk: dict[str, Any] = codec.to_jwk(private_key.public_key(), as_dict=True)
    return {key: jwk[key] for key in sorted(jwk)}


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint: a kid that names the key itself."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _info(row: SigningKey) -> KeyInfo:
    return KeyInfo(kid=row.kid, algorithm=row.algorithm, public_jwk=dict(row.public_jwk),
                   created_at=row.created_at, activated_at=row.activated_at,
                   retired_at=row.retired_at, expires_at=row.expires_at)


def _active_row(session: Session) -> SigningKey | None:
    return session.scalars(
        select(SigningKey)
        .where(SigningKey.activated_at.is_not(None), SigningKey.retired_at.is_(None))
        .order_by(SigningKey.activated_at.desc(), SigningKey.kid)
        .limit(1)
    ).first()


def _new_row(kek: Kek, algorithm: str, now: datetime) -> SigningKey:
    private_key = _generate(algorithm)
    jwk = _public_jwk(private_key, algorithm)
    kid = _thumbprint(jwk)
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    jwk.update(kid=kid, alg=algorithm, use="sig")
    return SigningKey(kid=kid, algorithm=algorithm, public_jwk=jwk,
                      private_key_encrypted=kek.encrypt(pem, _aad(kid)),
                      created_at=now, activated_at=now, retired_at=None, expires_at=None)


def _retire(session: Session, row: SigningKey, now: datetime) -> None:
    last_expiry = session.execute(
        select(func.max(OAuthToken.expires_at)).where(OAuthToken.kid == row.kid)).scalar()
    row.retired_at = now
    row.expires_at = max(now, last_expiry or now) + RETIREMENT_MARGIN


def _prune(session: Session, now: datetime) -> None:
    session.execute(delete(SigningKey).where(SigningKey.expires_at.is_not(None), SigningKey.expires_at <= now))


class SigningKeys:
    """The key ring over the database; loaded private keys are cached by kid (a kid is a
    thumbprint of the key, so a cached entry never goes stale)."""

    def __init__(self, store: Store, kek: Kek, *, algorithm: str = DEFAULT_ALGORITHM) -> None:
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise InvalidArgument(f"unsupported signing algorithm {algorithm!r}")
        self._store = store
        self._kek = kek
        self._algorithm = algorithm
        self._cache: dict[str, PrivateKey] = {}
        self._lock = threading.Lock()

    def ensure_active(self) -> KeyInfo:
        """The signing key, generated when there is none (first start)."""
        with self._store.read() as session:
            row = _active_row(session)
            if row is not None:
                return _info(row)
        with self._store.write() as writer:
            row = _active_row(writer.session)  # another process may have made one meanwhile
            if row is None:
                row = _new_row(self._kek, self._algorithm, utcnow())
                writer.session.add(row)
            return _info(row)

    def rotate(self, algorithm: str = "") -> KeyInfo:
        """A new signing key from now on; the previous one is retired but stays published
        until the tokens it signed have expired."""
        algorithm = algorithm or self._algorithm
        now = utcnow()
        with self._store.write() as writer:
            session = writer.session
            _prune(session, now)
            new = _new_row(self._kek, algorithm, now)
            for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
                _retire(session, row, now)
            session.add(new)
            return _info(new)

    def list(self) -> list[KeyInfo]:
        """Every key still published (active, then retired by newest), expired ones pruned."""
        now = utcnow()
        with self._store.write() as writer:
            _prune(writer.session, now)
        with self._store.read() as session:
            rows = session.scalars(select(SigningKey)).all()
        return sorted((_info(r) for r in rows),
                      key=lambda k: (not k.active, -(k.activated_at or k.created_at).timestamp(), k.kid))

    def jwks(self) -> dict[str, Any]:
        """The public keys of the active and the overlapping (retired, unexpired) keys."""
        now = utcnow()
        with self._store.read() as session:
            rows = session.scalars(
                select(SigningKey)
                .where((SigningKey.expires_at.is_(None)) | (SigningKey.expires_at > now))
                .order_by(SigningKey.created_at.desc(), SigningKey.kid)).all()
        return {"keys": [dict(row.public_jwk) for row in rows]}

    def signer(self, session: Session) -> Signer:
        """The signing key, read in the caller's (write) transaction so that a rotation
        never retires it without counting the token being signed."""
        row = _active_row(session)
        if row is None:
            row = _new_row(self._kek, self._algorithm, utcnow())
            session.add(row)
            session.flush()
        return Signer(kid=row.kid, algorithm=row.algorithm, private_key=self._private_key(row))

    def _private_key(self, row: SigningKey) -> PrivateKey:
        with self._lock:
            cached = self._cache.get(row.kid)
        if cached is not None:
            return cached
        pem = self._kek.decrypt(row.private_key_encrypted, _aad(row.kid))
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise TypeError(f"signing key {row.kid} is neither EC nor RSA")
        with self._lock:
            self._cache[row.kid] = key
        return key
