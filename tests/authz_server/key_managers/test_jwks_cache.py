"""The JWKS cache: refresh on an unknown kid, rate limited and single-flight; failures keep
the last good keys. Fetches are counted on the in-test JWKS server."""

import threading

import pytest

from authz_server.index.key_managers import KeySource
from authz_server.key_managers.jwks import KeyParseError, parse_certificate, parse_jwks
from authz_server.key_managers.jwks_cache import JwksCache, JwksRefresher, JwksUnavailable

from ..factories import index_of
from ..oauth import EC_KEY, RSA_KEY, RSA_OTHER, make_key_manager, public_jwk, public_pem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cache(clock):
    jwks = JwksCache(timeout=2.0, min_refresh_seconds=10.0, clock=clock)
    yield jwks
    jwks.close()


def test_first_use_fetches_once_then_serves_from_memory(provider, cache):
    source = KeySource(provider.jwks_uri)
    assert cache.key_for(source, "rsa-1") is not None
    assert cache.key_for(source, "ec-1") is not None
    assert provider.jwks_fetches == 1


def test_unknown_kid_triggers_one_refresh_that_finds_a_rotated_key(provider, cache):
    source = KeySource(provider.jwks_uri)
    cache.key_for(source, "rsa-1")
    provider.jwks_document = {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(RSA_OTHER, "rsa-2")]}
    assert cache.key_for(source, "rsa-2") is not None
    assert provider.jwks_fetches == 2


def test_flood_of_bogus_kids_is_rate_limited(provider, cache, clock):
    source = KeySource(provider.jwks_uri)
    cache.key_for(source, "rsa-1")
    for attempt in range(200):
        assert cache.key_for(source, f"bogus-{attempt}") is None
    assert provider.jwks_fetches == 2   # the first load and one forced refresh
    clock.now += 10.0
    assert cache.key_for(source, "bogus-after-interval") is None
    assert provider.jwks_fetches == 3


def test_concurrent_unknown_kids_share_one_fetch(provider, cache):
    source = KeySource(provider.jwks_uri)
    cache.key_for(source, "rsa-1")
    gate = threading.Barrier(16)
    results = []

    def worker(n):
        gate.wait()
        results.append(cache.key_for(source, f"bogus-{n}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [None] * 16
    assert provider.jwks_fetches == 2


def test_failed_refresh_keeps_the_last_good_keys(provider, cache, clock):
    source = KeySource(provider.jwks_uri)
    cache.key_for(source, "rsa-1")
    provider.jwks_status = 500
    clock.now += 60
    cache.refresh(source)
    assert cache.key_for(source, "unknown") is None
    assert cache.key_for(source, "rsa-1") is not None


def test_garbage_answer_keeps_the_last_good_keys(provider, cache, clock):
    source = KeySource(provider.jwks_uri)
    cache.key_for(source, "rsa-1")
    provider.jwks_document = {"not": "a jwks"}
    cache.refresh(source)
    assert cache.key_for(source, "rsa-1") is not None


def test_nothing_cached_and_provider_down_is_unavailable_and_not_retried_per_request(provider, cache):
    provider.jwks_status = 503
    source = KeySource(provider.jwks_uri)
    for _ in range(20):
        with pytest.raises(JwksUnavailable):
            cache.key_for(source, "rsa-1")
    assert provider.jwks_fetches == 1


def test_bounded_number_of_sources(provider, clock):
    cache = JwksCache(min_refresh_seconds=10.0, max_entries=2, clock=clock)
    for n in range(5):
        cache.key_for(KeySource(provider.jwks_uri + f"?n={n}"), "rsa-1")
    assert len(cache.cached_sources()) == 2
    cache.close()


def test_refresher_prefetches_new_and_changed_key_managers(provider, cache):
    refresher = JwksRefresher(cache, interval=3600)
    first = index_of(make_key_manager(jwks_uri=provider.jwks_uri),
                     make_key_manager("km-off", name="Off", issuer="https://off", jwks_uri=provider.jwks_uri + "?off",
                                      enabled=False))
    refresher.on_policy_change(None, first)
    refresher.start()
    try:
        # The refresher works off its own thread; wait for its one fetch without a timing assertion.
        for _ in range(500):
            if KeySource(provider.jwks_uri) in cache.cached_sources() and provider.jwks_fetches:
                break
            threading.Event().wait(0.01)
        assert cache.cached_sources() == [KeySource(provider.jwks_uri)]   # the disabled one is not fetched
    finally:
        refresher.stop()


@pytest.mark.parametrize(
    "jwk_overrides,usable",
    [({}, True), ({"use": "enc"}, False), ({"d": "private"}, False), ({"kty": "oct", "k": "c2VjcmV0"}, False),
     ({"kid": 5}, False)],
    ids=["public-signature-key", "encryption-key", "private-member", "symmetric-key", "kid-not-a-string"],
)
def test_jwks_parsing_keeps_only_public_signature_keys(jwk_overrides, usable):
    jwk = public_jwk(RSA_KEY, "k1")
    jwk.update(jwk_overrides)
    keys = parse_jwks({"keys": [jwk]})
    assert (keys.find("k1") is not None) is usable


def test_duplicate_kid_is_unusable():
    keys = parse_jwks({"keys": [public_jwk(RSA_KEY, "k1"), public_jwk(RSA_OTHER, "k1")]})
    assert keys.find("k1") is None


def test_short_rsa_key_is_refused():
    from cryptography.hazmat.primitives.asymmetric import rsa

    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert parse_jwks({"keys": [public_jwk(short, "k1")]}).find("k1") is None


def test_jwk_alg_binds_the_key_to_one_algorithm():
    key = parse_jwks({"keys": [public_jwk(RSA_KEY, "k1", alg="RS256")]}).find("k1")
    assert key.can_verify("RS256") and not key.can_verify("PS256") and not key.can_verify("ES256")


def test_certificate_or_public_key_pem():
    assert parse_certificate(public_pem(EC_KEY).decode()).find(None).can_verify("ES256")
    with pytest.raises(KeyParseError):
        parse_certificate("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
