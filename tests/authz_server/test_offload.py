"""Decisions on the native front end's loop thread never wait on the network: where a JWKS
fetch or an introspection call would be needed they raise WouldBlock before changing any
state, and the same decision then succeeds where blocking is allowed."""

from __future__ import annotations

import threading

import pytest

from authz_server import offload
from authz_server.index.key_managers import KeySource
from authz_server.key_managers.jwks_cache import JwksCache
from authz_server.pipeline import Allow, decide

from .factories import PIZZA_BASE, index_of, make_request
from .oauth import mint, make_key_manager, oauth_world
from .credentials.test_opaque_token import RESIDENT_TOKEN, _active, _records, _resident


def test_inline_is_scoped_to_the_block_and_the_thread():
    offload.ensure_may_block()
    with offload.inline():
        with pytest.raises(offload.WouldBlock):
            offload.ensure_may_block()
        other = []
        thread = threading.Thread(target=lambda: other.append(offload.ensure_may_block()))
        thread.start()
        thread.join()
        assert other == [None]
    offload.ensure_may_block()


def test_would_block_is_not_an_exception_a_handler_would_swallow():
    def handler_that_catches_every_error():
        try:
            raise offload.WouldBlock()
        except Exception:  # what a stage's catch-all would do
            return "swallowed"
    with pytest.raises(offload.WouldBlock):
        handler_that_catches_every_error()


def test_acquire_inline_refuses_a_held_lock_instead_of_waiting():
    lock = threading.Lock()
    lock.acquire()
    with offload.inline(), pytest.raises(offload.WouldBlock):
        offload.acquire(lock)
    lock.release()
    with offload.inline():
        offload.acquire(lock)
    assert lock.locked()


def test_a_jwks_fetch_moves_off_the_loop_and_leaves_no_trace(provider):
    cache = JwksCache(timeout=2.0, min_refresh_seconds=10.0)
    source = KeySource(provider.jwks_uri)
    try:
        with offload.inline(), pytest.raises(offload.WouldBlock):
            cache.key_for(source, "rsa-1")
        assert provider.jwks_fetches == 0
        assert cache.key_for(source, "rsa-1") is not None   # the retry is not rate limited
        assert provider.jwks_fetches == 1
        with offload.inline():
            assert cache.key_for(source, "rsa-1") is not None   # cached: inline from now on
    finally:
        cache.close()


def test_an_unknown_kid_refresh_moves_off_the_loop_then_is_rate_limited_inline(provider):
    cache = JwksCache(timeout=2.0, min_refresh_seconds=10.0)
    source = KeySource(provider.jwks_uri)
    try:
        cache.key_for(source, "rsa-1")
        with offload.inline(), pytest.raises(offload.WouldBlock):
            cache.key_for(source, "bogus")
        assert cache.key_for(source, "bogus") is None   # the forced refresh, on a thread
        with offload.inline():
            assert cache.key_for(source, "bogus-2") is None   # rate limited: no fetch, no WouldBlock
        assert provider.jwks_fetches == 2
    finally:
        cache.close()


def test_a_first_jwt_decision_moves_then_the_cached_one_stays_inline(provider, tokens):
    records = oauth_world(make_key_manager(jwks_uri=provider.jwks_uri))
    request = make_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {mint()}"})
    index = index_of(*records)
    import time

    with offload.inline(), pytest.raises(offload.WouldBlock):
        decide(request, index, time.time(), tokens)
    assert isinstance(decide(request, index, time.time(), tokens), Allow)
    with offload.inline():
        assert isinstance(decide(request, index, time.time(), tokens), Allow)


def test_an_introspection_moves_off_the_loop_then_is_answered_from_the_cache(provider, tokens):
    import time

    provider.answers[RESIDENT_TOKEN] = _active()
    index = index_of(*_records(_resident(provider)))
    request = make_request(PIZZA_BASE + "/orders", headers={"authorization": f"Bearer {RESIDENT_TOKEN}"})
    with offload.inline(), pytest.raises(offload.WouldBlock):
        decide(request, index, time.time(), tokens)
    assert provider.authorizations == []
    assert isinstance(decide(request, index, time.time(), tokens), Allow)
    with offload.inline():
        assert isinstance(decide(request, index, time.time(), tokens), Allow)
    assert len(provider.authorizations) == 1
