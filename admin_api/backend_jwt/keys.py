"""Backend-JWT signing keys: generation, rotation with overlap, JWKS.

One key is active per algorithm (ES256 on first start; RS256 or EdDSA when an API asks
for them). Rotating an algorithm activates a new key and retires the previous one: it
signs no more, but stays in the JWKS until every backend JWT it can have signed has
expired (the longest validity an API may set, plus a margin for clock leeway and for
replicas that apply the rotation a moment later), after which it is pruned.

Keys are synced entities (BackendSigningKeyRecord, with the private key: replicas sign),
so every change goes through the Writer and lands in the change log, where the outbox
seals the payload with the KEK. In the table, the private key is encrypted with the KEK.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.crypto.kek import Kek
from admin_api.db.backend_jwt_models import BackendSigningKey, private_key_aad
from admin_api.db.types import utcnow
from admin_api.errors import InvalidArgument
from admin_api.store.unit_of_work import Store, Writer
from portcullis_shared.backend_jwt import ALGORITHMS, DEFAULT_ALGORITHM, MAX_VALIDITY_SECONDS

RSA_KEY_BITS = 2048
# Beyond the longest validity: clock leeway at the backends and replicas that still sign
# with the old key until the rotation reaches them.
RETIREMENT_MARGIN = timedelta(seconds=300)
OVERLAP = timedelta(seconds=MAX_VALIDITY_SECONDS) + RETIREMENT_MARGIN

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


@dataclass(frozen=True)
class BackendKeyInfo:
    """What may be shown of a key (never its private part)."""

    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    created_at: datetime
    activated_at: datetime
    retired_at: datetime | None
    expires_at: datetime | None

    @property
    def active(self) -> bool:
        return self.retired_at is None


def check_algorithm(algorithm: str, field: str = "algorithm") -> str:
    algorithm = algorithm or DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise InvalidArgument(f"{field} must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}", field=field)
    return algorithm


def _generate(algorithm: str) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return ed25519.Ed25519PrivateKey.generate()


def _public_jwk(private_key: PrivateKey) -> dict[str, Any]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    elif isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return dict(jwk)


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: a kid that names the key itself."""
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def new_key(kek: Kek, algorithm: str, now: datetime) -> BackendSigningKey:
    private_key = _generate(check_algorithm(algorithm))
    jwk = _public_jwk(private_key)
    kid = thumbprint(jwk)
    jwk.update(kid=kid, alg=algorithm, use="sig")
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return BackendSigningKey(id=kid, algorithm=algorithm, public_jwk={k: jwk[k] for k in sorted(jwk)},
                             private_key_encrypted=kek.encrypt(pem, private_key_aad(kid)), created_at=now,
                             activated_at=now, retired_at=None, expires_at=None)


def _info(row: BackendSigningKey) -> BackendKeyInfo:
    return BackendKeyInfo(kid=row.id, algorithm=row.algorithm, public_jwk=dict(row.public_jwk),
                          created_at=row.created_at, activated_at=row.activated_at,
                          retired_at=row.retired_at, expires_at=row.expires_at)


def active_key(session: Session, algorithm: str) -> BackendSigningKey | None:
    return session.scalars(
        select(BackendSigningKey)
        .where(BackendSigningKey.algorithm == algorithm, BackendSigningKey.retired_at.is_(None))
        .order_by(BackendSigningKey.activated_at.desc(), BackendSigningKey.id)
        .limit(1)
    ).first()


def ensure_active_in(writer: Writer, kek: Kek, algorithm: str) -> BackendSigningKey:
    """The active key of `algorithm`, generated in the caller's transaction when there is none."""
    row = active_key(writer.session, algorithm)
    if row is None:
        row = new_key(kek, algorithm, utcnow())
        writer.upsert(row)
    return row


def prune(writer: Writer, now: datetime) -> None:
    """Drop retired keys that no valid backend JWT can name any more (replicas drop them too)."""
    expired = writer.session.scalars(select(BackendSigningKey).where(
        BackendSigningKey.expires_at.is_not(None), BackendSigningKey.expires_at <= now)).all()
    for row in expired:
        writer.delete(row)


class BackendSigningKeys:
    """The key ring over the database."""

    def __init__(self, store: Store, kek: Kek) -> None:
        self._store = store
        self._kek = kek

    def ensure_active(self, algorithm: str = DEFAULT_ALGORITHM) -> BackendKeyInfo:
        """The active key of `algorithm`, generated when there is none (first start)."""
        with self._store.read() as session:
            row = active_key(session, algorithm)
            if row is not None:
                return _info(row)
        with self._store.write() as writer:  # another process may have made one meanwhile
            return _info(ensure_active_in(writer, self._kek, algorithm))

    def rotate(self, algorithm: str = "") -> BackendKeyInfo:
        """A new key signs `algorithm` from now on; the previous one stays published for OVERLAP."""
        algorithm = check_algorithm(algorithm, "algorithm")
        now = utcnow()
        with self._store.write() as writer:
            prune(writer, now)
            new = new_key(self._kek, algorithm, now)
            # The new key first: a replica applying one change at a time always has an
            # active key for the algorithm.
            writer.upsert(new)
            previous = writer.session.scalars(select(BackendSigningKey).where(
                BackendSigningKey.algorithm == algorithm, BackendSigningKey.retired_at.is_(None),
                BackendSigningKey.id != new.id)).all()
            for row in previous:
                row.retired_at = now
                row.expires_at = now + OVERLAP
                writer.upsert(row)
            return _info(new)

    def list(self) -> list[BackendKeyInfo]:
        """Every key still published: active ones (by algorithm), then retired by newest."""
        with self._store.write() as writer:
            prune(writer, utcnow())
        with self._store.read() as session:
            rows = session.scalars(select(BackendSigningKey)).all()
        return sorted((_info(r) for r in rows),
                      key=lambda k: (not k.active, ALGORITHMS.index(k.algorithm) if k.active else 0,
                                     -k.activated_at.timestamp(), k.kid))

    def jwks(self) -> dict[str, Any]:
        """The public keys of the active and the overlapping (retired, unexpired) keys."""
        now = utcnow()
        with self._store.read() as session:
            rows = session.scalars(
                select(BackendSigningKey)
                .where((BackendSigningKey.expires_at.is_(None)) | (BackendSigningKey.expires_at > now))
                .order_by(BackendSigningKey.activated_at.desc(), BackendSigningKey.id)).all()
        return {"keys": [dict(row.public_jwk) for row in rows]}
