"""SigningKeyService: list and rotate the resident key manager's signing keys.

The keys are deployment-wide (one issuer, one JWKS), so only admins of the default
organization may see or rotate them. Answers carry the public JWK only.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from admin_api.access.caller import Caller
from admin_api.errors import PermissionDenied
from admin_api.oauth.signing_keys import KeyInfo, SigningKeys
from admin_api.services.organizations import DEFAULT_ORGANIZATION
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import signing_keys_pb2 as pb

_JWK_MEMBERS = ("kty", "kid", "alg", "use", "crv", "x", "y", "n", "e")


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def signing_key_pb(info: KeyInfo) -> pb.SigningKey:
    message = pb.SigningKey(
        kid=info.kid,
        algorithm=info.algorithm,
        state=pb.SigningKey.ACTIVE if info.active else pb.SigningKey.RETIRED,
        public_jwk=pb.PublicJwk(**{m: str(info.public_jwk.get(m, "")) for m in _JWK_MEMBERS}),
        created_at=_ts(info.created_at),
    )
    for field in ("activated_at", "retired_at", "expires_at"):
        value = getattr(info, field)
        if value is not None:
            getattr(message, field).CopyFrom(_ts(value))
    return message


def _ring(store: Store, caller: Caller) -> SigningKeys:
    if caller.organization_id != DEFAULT_ORGANIZATION:
        raise PermissionDenied("signing keys are deployment-wide: only admins of the default organization "
                               "may list or rotate them")
    return SigningKeys(store, store.config.require_kek())


def list_signing_keys(store: Store, request: pb.ListSigningKeysRequest, caller: Caller) -> pb.ListSigningKeysResponse:
    ring = _ring(store, caller)
    ring.ensure_active()
    return pb.ListSigningKeysResponse(keys=[signing_key_pb(info) for info in ring.list()])


def rotate_signing_key(store: Store, request: pb.RotateSigningKeyRequest, caller: Caller) -> pb.SigningKey:
    return signing_key_pb(_ring(store, caller).rotate(request.algorithm))
