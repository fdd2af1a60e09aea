"""The verified-token cache: a JWT's signature is verified once per token (until exp), and
every other check still runs on each request (revocation, key manager, key, scope...)."""

import time

import jwt
import pytest

from authz_server.key_managers.introspection import IntrospectionClient
from authz_server.key_managers.jwks_cache import JwksCache
from authz_server.key_managers.services import TokenServices
from authz_server.key_managers.verified import VerifiedTokenCache, token_digest
from authz_server.pipeline import Allow, decide
from portcullis.sync.v1 import sync_pb2

from ..factories import PIZZA_BASE, entity, index_of, make_request
from ..oauth import EC_KEY, claims, make_key_manager, mint, oauth_api, oauth_world, public_jwk


@pytest.fixture
def cached_tokens():
    bundle = TokenServices(
        jwks=JwksCache(timeout=2.0, min_refresh_seconds=0.001),
        introspection=IntrospectionClient(sync_token=lambda: "pcs_sync", timeout=2.0),
        verified=VerifiedTokenCache(100),
    )
    yield bundle
    bundle.stop()


@pytest.fixture
def verifications(monkeypatch):
    """Signature checks, counted at PyJWT's decode: a patch of jwt_token's own function would
    not hold on its compiled build (authz_server/compiled), a module attribute of PyJWT does."""
    calls = []
    real = jwt.decode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


def _decide(token, index, tokens, target="/menu", now=None):
    request = make_request(PIZZA_BASE + target, headers={"authorization": f"Bearer {token}"})
    return decide(request, index, time.time() if now is None else now, tokens)


def _world(provider):
    return oauth_world(make_key_manager(jwks_uri=provider.jwks_uri))


def test_the_signature_is_verified_once_per_token(provider, cached_tokens, verifications):
    index = index_of(*_world(provider))
    token = mint()
    for _ in range(3):
        assert isinstance(_decide(token, index, cached_tokens), Allow)
    assert len(verifications) == 1
    assert isinstance(_decide(mint(claims(jti="another")), index, cached_tokens), Allow)  # verified
    assert len(verifications) == 2


def test_a_revocation_denies_a_cached_token(provider, cached_tokens, verifications):
    index = index_of(*_world(provider))
    token = mint()
    assert isinstance(_decide(token, index, cached_tokens), Allow)
    revoked = sync_pb2.RevokedTokenRecord(id="jti-1", organization_id="default", key_manager_id="km-idp",
                                          expires_at_unix=int(time.time()) + 600)
    revised = index.with_upsert(entity(revoked), index.revision + 1)
    assert _decide(token, revised, cached_tokens).code == "token_revoked"
    assert len(verifications) == 1  # denied from the cache entry, by the per-request check


def test_an_api_that_stops_allowing_the_key_manager_denies_a_cached_token(provider, cached_tokens, verifications):
    index = index_of(*_world(provider))
    token = mint()
    assert isinstance(_decide(token, index, cached_tokens), Allow)
    revised = index.with_upsert(entity(oauth_api(allowed=("Other",))), index.revision + 1)
    assert _decide(token, revised, cached_tokens).code == "key_manager_not_allowed"
    assert len(verifications) == 1


def test_a_changed_key_manager_means_a_full_verification(provider, cached_tokens, verifications):
    index = index_of(*_world(provider))
    token = mint()
    assert isinstance(_decide(token, index, cached_tokens), Allow)
    disabled = index.with_upsert(entity(make_key_manager(jwks_uri=provider.jwks_uri, enabled=False)), index.revision + 1)
    assert _decide(token, disabled, cached_tokens).code == "key_manager_disabled"
    other_issuer = index.with_upsert(entity(make_key_manager(jwks_uri=provider.jwks_uri, issuer="https://x.example")),
                                     index.revision + 1)
    assert _decide(token, other_issuer, cached_tokens).code == "token_issuer_unknown"


def test_a_key_no_longer_published_is_not_trusted_from_the_cache(provider, cached_tokens, verifications):
    index = index_of(*_world(provider))
    token = mint()
    assert isinstance(_decide(token, index, cached_tokens), Allow)
    provider.jwks_document = {"keys": [public_jwk(EC_KEY, "ec-1")]}  # rsa-1 withdrawn
    cached_tokens.jwks.refresh(index.key_managers.get("km-idp").key_source)
    assert _decide(token, index, cached_tokens).code == "token_key_unknown"


def test_scope_is_checked_per_request_for_a_cached_token(provider, cached_tokens):
    index = index_of(*_world(provider))
    token = mint()  # scope: no orders:* scope
    assert isinstance(_decide(token, index, cached_tokens), Allow)
    assert _decide(token, index, cached_tokens, target="/orders").code == "insufficient_scope"


def test_entries_end_at_exp_plus_leeway(provider, cached_tokens):
    index = index_of(*_world(provider))
    token = mint()
    assert isinstance(_decide(token, index, cached_tokens), Allow)
    digest = token_digest(token)
    entry = cached_tokens.verified.get(digest, time.time())
    assert entry is not None
    after = entry.claims["exp"] + entry.key_manager.leeway_seconds
    assert cached_tokens.verified.get(digest, after + 1) is None
