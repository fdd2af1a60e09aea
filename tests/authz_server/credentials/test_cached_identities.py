"""A JWT whose verification is cached has its identity remembered per index: a revocation
and a removed application key still refuse it on the very next call."""

from __future__ import annotations

import time

import pytest

from authz_server import denials
from authz_server.credentials.jwt_token import authenticate_jwt
from authz_server.key_managers.verified import VerifiedTokenCache
from portcullis.sync.v1 import sync_pb2

from ..factories import index_of
from ..oauth import CLIENT, claims, make_key_manager, mint, oauth_world, public_pem, services, RSA_KEY


NOW = time.time()


def _setup():
    world = oauth_world(make_key_manager(certificate_pem=public_pem(RSA_KEY).decode()))
    tokens = services()
    tokens.verified = VerifiedTokenCache(100)
    token = mint(claims(jti="jti-memo"))   # exp: now + 600 (PyJWT checks the wall clock)
    return world, tokens, token


def _api(index):
    return index.apis.get("api-pizza")


def test_the_remembered_identity_is_the_one_built_afresh():
    world, tokens, token = _setup()
    index = index_of(*world)
    first = authenticate_jwt(token, _api(index), index, NOW, tokens)
    second = authenticate_jwt(token, _api(index), index, NOW, tokens)
    assert second is not None and first is not None
    assert second == first and second.consumer_key == CLIENT and second.credential_id.startswith("token:")


def test_a_revocation_refuses_the_next_call():
    world, tokens, token = _setup()
    index = index_of(*world)
    authenticate_jwt(token, _api(index), index, NOW, tokens)
    authenticate_jwt(token, _api(index), index, NOW, tokens)
    revoked = index_of(*world, sync_pb2.RevokedTokenRecord(id="jti-memo", organization_id="default", key_manager_id="km-idp",
                                                           expires_at_unix=int(NOW) + 600), revision=2)
    with pytest.raises(denials.TokenRevoked):
        authenticate_jwt(token, _api(revoked), revoked, NOW, tokens)


def test_a_removed_application_key_refuses_the_next_call():
    world, tokens, token = _setup()
    index = index_of(*world)
    authenticate_jwt(token, _api(index), index, NOW, tokens)
    authenticate_jwt(token, _api(index), index, NOW, tokens)
    without = index_of(*[record for record in world if not isinstance(record, sync_pb2.ApplicationKeyRecord)],
                       revision=2)
    with pytest.raises(denials.TokenClientUnknown):
        authenticate_jwt(token, _api(without), without, NOW, tokens)
