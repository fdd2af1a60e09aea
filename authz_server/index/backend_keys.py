"""Backend-JWT signing keys: records from admin_api compiled into loaded private keys.

The PEM is parsed once, when the record arrives, so signing on the hot path never
parses a key. Per algorithm, the newest activated key that is not retired signs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar, Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from immutables import Map
from portcullis.sync.v1 import sync_pb2

from authz_server.index.errors import PolicyError
from authz_server.index.table import Table, TableEdit

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_KEY_TYPES = {"ES256": ec.EllipticCurvePrivateKey, "RS256": rsa.RSAPrivateKey, "EdDSA": ed25519.Ed25519PrivateKey}


@dataclass(frozen=True)
class BackendKeyPolicy:
    kid: str
    algorithm: str
    private_key: PrivateKey = field(repr=False, compare=False)
    public_jwk: dict = field(compare=False)
    not_before: int
    retired_at: int          # 0: active
    expires_at: int          # 0: active

    @property
    def active(self) -> bool:
        return self.retired_at == 0


def compile_backend_key(record: sync_pb2.BackendSigningKeyRecord) -> BackendKeyPolicy:
    if not record.id:
        raise PolicyError("backend signing key record without a kid")
    expected = _KEY_TYPES.get(record.algorithm)
    if expected is None:
        raise PolicyError(f"backend signing key {record.id}: unsupported algorithm {record.algorithm!r}")
    try:
        private_key = serialization.load_pem_private_key(record.private_key_pem.encode("ascii"), password=None)
        public_jwk = json.loads(record.public_jwk_json)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise PolicyError(f"backend signing key {record.id}: unreadable key material ({type(exc).__name__})") from None
    if not isinstance(private_key, expected):
        raise PolicyError(f"backend signing key {record.id}: not a key for {record.algorithm}")
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name != "secp256r1":
        raise PolicyError(f"backend signing key {record.id}: ES256 needs a P-256 key")
    return BackendKeyPolicy(kid=record.id, algorithm=record.algorithm, private_key=private_key,
                            public_jwk=public_jwk, not_before=record.not_before_unix,
                            retired_at=record.retired_at_unix, expires_at=record.expires_at_unix)


def signing_keys_by_algorithm(keys: Iterable[BackendKeyPolicy]) -> dict[str, BackendKeyPolicy]:
    """The key that signs each algorithm: the newest active one (ties broken by kid, so
    every replica picks the same)."""
    chosen: dict[str, BackendKeyPolicy] = {}
    for key in keys:
        if not key.active:
            continue
        current = chosen.get(key.algorithm)
        if current is None or (key.not_before, key.kid) > (current.not_before, current.kid):
            chosen[key.algorithm] = key
    return chosen


@dataclass(frozen=True, slots=True)
class BackendKeyTable(Table):
    entity: ClassVar[str] = "backend_signing_key"
    ref_kind: ClassVar[int] = sync_pb2.BACKEND_SIGNING_KEY
    by_id: Map = Map()  # kid → BackendKeyPolicy
    signing: Map = Map()  # algorithm → the BackendKeyPolicy that signs it

    def signing_key(self, algorithm: str) -> BackendKeyPolicy | None:
        return self.signing.get(algorithm)

    def edit(self) -> "_BackendKeyEdit":
        return _BackendKeyEdit(self)


class _BackendKeyEdit(TableEdit):
    def __init__(self, base: BackendKeyTable) -> None:
        self.base = base
        self.by_id = base.by_id.mutate()
        self.changed = False

    def upsert(self, record: sync_pb2.BackendSigningKeyRecord) -> None:
        key = compile_backend_key(record)
        self.by_id[key.kid] = key
        self.changed = True

    def delete(self, entity_id: str) -> None:
        if self.by_id.pop(entity_id, None) is not None:
            self.changed = True

    def finish(self) -> BackendKeyTable:
        by_id = self.by_id.finish()
        # A handful of keys: the signing choice is recomputed whole when one changes.
        signing = Map(signing_keys_by_algorithm(by_id.values())) if self.changed else self.base.signing
        return BackendKeyTable(by_id=by_id, signing=signing)
