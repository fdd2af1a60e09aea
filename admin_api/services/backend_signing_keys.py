"""BackendSigningKeyService: list and rotate the keys that sign backend JWTs.

Deployment-wide (one JWKS at /backend-jwt/jwks.json), so only admins of the default
organization may see or rotate them. Answers carry the public JWK only.
"""

from __future__ import annotations

from admin_api.backend_jwt.keys import BackendKeyInfo, BackendSigningKeys
from admin_api.access.caller import Caller
from admin_api.errors import PermissionDenied
from admin_api.services.organizations import DEFAULT_ORGANIZATION
from admin_api.services.signing_keys import signing_key_pb
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import backend_signing_keys_pb2 as pb
from portcullis.admin.v1 import signing_keys_pb2


def _key_pb(info: BackendKeyInfo) -> signing_keys_pb2.SigningKey:
    # Same shape as the resident key manager's keys (kid, state, JWK, times).
    return signing_key_pb(info)  # type: ignore[arg-type]


def _ring(store: Store, caller: Caller) -> BackendSigningKeys:
    if caller.organization_id != DEFAULT_ORGANIZATION:
        raise PermissionDenied("backend signing keys are deployment-wide: only admins of the default "
                               "organization may list or rotate them")
    return BackendSigningKeys(store, store.config.require_kek())


def list_backend_signing_keys(store: Store, request: pb.ListBackendSigningKeysRequest,
                              caller: Caller) -> pb.ListBackendSigningKeysResponse:
    ring = _ring(store, caller)
    ring.ensure_active()
    return pb.ListBackendSigningKeysResponse(keys=[_key_pb(info) for info in ring.list()])


def rotate_backend_signing_key(store: Store, request: pb.RotateBackendSigningKeyRequest,
                               caller: Caller) -> signing_keys_pb2.SigningKey:
    return _key_pb(_ring(store, caller).rotate(request.algorithm))
