"""Backend-JWT test kit: signing key records, an API that asks for a backend JWT, and a
signer that counts its signatures."""

from __future__ import annotations

import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server.backend_jwt.signer import PyJwtSigner

from .factories import NOW, make_api

# Generated once per run: RSA generation is the slow part.
PRIVATE_KEYS = {
    "ES256": ec.generate_private_key(ec.SECP256R1()),
    "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "EdDSA": ed25519.Ed25519PrivateKey.generate(),
}
OTHER_ES256 = ec.generate_private_key(ec.SECP256R1())
_CODECS = {"ES256": ECAlgorithm, "RS256": RSAAlgorithm, "EdDSA": OKPAlgorithm}


def key_record(algorithm: str = "ES256", kid: str = "kid-es-1", *, private_key=None, not_before: int = int(NOW) - 60,
               retired_at: int = 0, expires_at: int = 0) -> sync_pb2.BackendSigningKeyRecord:
    private_key = private_key or PRIVATE_KEYS[algorithm]
    jwk = dict(_CODECS[algorithm].to_jwk(private_key.public_key(), as_dict=True), kid=kid, alg=algorithm, use="sig")
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    return sync_pb2.BackendSigningKeyRecord(id=kid, algorithm=algorithm, private_key_pem=pem,
                                            public_jwk_json=json.dumps(jwk), not_before_unix=not_before,
                                            retired_at_unix=retired_at, expires_at_unix=expires_at)


def key_entity(record: sync_pb2.BackendSigningKeyRecord) -> sync_pb2.PolicyEntity:
    return sync_pb2.PolicyEntity(backend_signing_key=record)


def backend_config(**fields: Any) -> admin_pb2.BackendJwtConfig:
    config = admin_pb2.BackendJwtConfig(enabled=True, header="x-jwt-assertion", validity_seconds=300,
                                        algorithm="ES256")
    for name, value in fields.items():
        if name == "claim_mappings":
            config.claim_mappings.extend(admin_pb2.ClaimMapping(from_claim=f, to_claim=t) for f, t in value)
        elif name == "static_claims":
            config.static_claims.extend(admin_pb2.StaticClaim(name=n, value=v) for n, v in value)
        else:
            setattr(config, name, value)
    return config


def jwt_api(config: admin_pb2.BackendJwtConfig | None = None, **fields: Any) -> admin_pb2.Api:
    api = make_api(**fields)
    api.backend_jwt.CopyFrom(config if config is not None else backend_config())
    return api


def verify(token: str, record: sync_pb2.BackendSigningKeyRecord) -> dict[str, Any]:
    """Verified the way a backend would: the published JWK, one algorithm, claims required.
    (Times are the tests' fixed NOW, in the future: iat is not compared with the wall clock.)"""
    jwk = jwt.PyJWK(json.loads(record.public_jwk_json))
    assert jwt.get_unverified_header(token)["kid"] == record.id
    return jwt.decode(token, jwk.key, algorithms=[record.algorithm], issuer="portcullis",
                      options={"require": ["exp", "iat", "iss", "jti", "sub"], "verify_iat": False})


class CountingSigner(PyJwtSigner):
    def __init__(self) -> None:
        self.signatures = 0

    def sign(self, claims, key) -> str:
        self.signatures += 1
        return super().sign(claims, key)
