"""Opaque (reference) tokens: RFC 7662 introspection against an in-test server, candidate
selection by token-format pattern, caching, and failures that are never cached as success."""

import base64
import threading
import time

import pytest

from authz_server.key_managers.introspection import IntrospectionClient
from authz_server.pipeline import Allow, decide

from ..factories import PIZZA_BASE, index_of, make_request
from ..oauth import CLIENT, KM, make_key_manager, oauth_api, oauth_world, services

RESIDENT_TOKEN = "pct_" + "a" * 43
PATTERN = r"^pct_[A-Za-z0-9_-]{43}$"


def _resident(provider, **kwargs):
    defaults = dict(name="Resident Key Manager", kind=KM.RESIDENT, issuer="http://127.0.0.1:8081",
                    accepts_reference=True, pattern=PATTERN, with_sync_token=True,
                    introspection_endpoint=provider.introspection_endpoint)
    defaults.update(kwargs)
    return make_key_manager("km-resident", **defaults)


def _external(provider, **kwargs):
    defaults = dict(name="IdP", accepts_reference=True, introspection_endpoint=provider.introspection_endpoint,
                    client_id="portcullis", client_secret="s3cret")
    defaults.update(kwargs)
    return make_key_manager("km-idp", **defaults)


def _active(client=CLIENT, **extra):
    now = int(time.time())
    answer = {"active": True, "client_id": client, "scope": "menu:read orders:read", "exp": now + 600,
              "token_type": "Bearer", "sub": "alice"}
    answer.update(extra)
    return answer


def _records(*key_managers, key_manager_id="km-resident"):
    from ..oauth import make_application_key

    records = oauth_world(*key_managers)
    return [r for r in records if type(r).__name__ != "ApplicationKeyRecord"] + [
        make_application_key(key_manager_id=key_manager_id)
    ]


def _decide(token, records, tokens, target="/menu", now=None):
    request = make_request(PIZZA_BASE + target, headers={"authorization": f"Bearer {token}"})
    return decide(request, index_of(*records), now if now is not None else time.time(), tokens)


def test_active_resident_token_is_allowed_with_the_sync_token(provider, tokens):
    provider.answers[RESIDENT_TOKEN] = _active()
    decision = _decide(RESIDENT_TOKEN, _records(_resident(provider)), tokens, target="/orders")
    assert isinstance(decision, Allow), decision
    assert decision.credential_kind == "oauth2_reference" and decision.key_manager_id == "km-resident"
    assert provider.authorizations == ["Bearer pcs_sync"]


def test_external_introspection_uses_http_basic(provider, tokens):
    token = "opaque-external-token"
    provider.answers[token] = _active()
    decision = _decide(token, _records(_external(provider), key_manager_id="km-idp"), tokens)
    assert isinstance(decision, Allow)
    assert provider.authorizations == ["Basic " + base64.b64encode(b"portcullis:s3cret").decode()]


@pytest.mark.parametrize(
    "answer,status,code",
    [({"active": False}, 200, "token_inactive"),
     ({"active": "true"}, 200, "key_manager_unavailable"),
     (b"not json at all", 200, "key_manager_unavailable"),
     (b"[true]", 200, "key_manager_unavailable"),
     (None, 500, "key_manager_unavailable"),
     (None, 401, "key_manager_unavailable"),
     ("expired", 200, "token_expired"),
     ("future", 200, "token_not_yet_valid"),
     ("other-client", 200, "token_client_unknown"),
     ("no-client", 200, "token_claims_invalid")],
    ids=["inactive", "active-not-boolean", "garbage-json", "json-not-object", "http-500", "http-401",
         "active-but-expired", "active-but-not-yet-valid", "unknown-client", "no-client"],
)
def test_introspection_answers(provider, tokens, answer, status, code):
    now = int(time.time())
    answer = {
        "expired": _active(exp=now - 3600),
        "future": _active(nbf=now + 3600),
        "other-client": _active(client="pcc_nobody"),
        "no-client": {"active": True, "exp": now + 60},
    }.get(answer, answer) if isinstance(answer, str) else answer
    if answer is not None:
        provider.answers[RESIDENT_TOKEN] = answer
    provider.introspect_status = status
    decision = _decide(RESIDENT_TOKEN, _records(_resident(provider)), tokens)
    assert decision.code == code


def test_timeout_is_bounded_and_unavailable(provider):
    provider.stall = threading.Event()
    bundle = services(timeout=0.2)
    try:
        decision = _decide(RESIDENT_TOKEN, _records(_resident(provider)), bundle)
    finally:
        provider.stall.set()
        bundle.stop()
    assert decision.code == "key_manager_unavailable" and decision.http_status == 503


def test_active_answer_is_cached(provider, tokens):
    provider.answers[RESIDENT_TOKEN] = _active()
    records = _records(_resident(provider))
    for _ in range(3):
        assert isinstance(_decide(RESIDENT_TOKEN, records, tokens), Allow)
    assert provider.introspection_count == 1


def test_active_answer_expires_with_the_token(provider, tokens):
    now = time.time()
    provider.answers[RESIDENT_TOKEN] = _active(exp=int(now) + 5)
    records = _records(_resident(provider, leeway=0))
    assert isinstance(_decide(RESIDENT_TOKEN, records, tokens, now=now), Allow)
    assert _decide(RESIDENT_TOKEN, records, tokens, now=now + 6).code == "token_expired"
    assert provider.introspection_count == 2   # the cached answer was not used past exp


def test_inactive_answer_is_cached_briefly(provider, tokens):
    records = _records(_resident(provider))
    now = time.time()
    assert _decide(RESIDENT_TOKEN, records, tokens, now=now).code == "token_inactive"
    assert _decide(RESIDENT_TOKEN, records, tokens, now=now + 1).code == "token_inactive"
    assert provider.introspection_count == 1
    provider.answers[RESIDENT_TOKEN] = _active()
    assert isinstance(_decide(RESIDENT_TOKEN, records, tokens, now=now + 11), Allow)


@pytest.mark.parametrize("failure", ["http-500", "garbage"])
def test_failures_are_never_cached(provider, tokens, failure):
    records = _records(_resident(provider))
    if failure == "http-500":
        provider.introspect_status = 500
    else:
        provider.answers[RESIDENT_TOKEN] = b"{oops"
    assert _decide(RESIDENT_TOKEN, records, tokens).code == "key_manager_unavailable"
    provider.introspect_status = 200
    provider.answers[RESIDENT_TOKEN] = _active()
    assert isinstance(_decide(RESIDENT_TOKEN, records, tokens), Allow)
    assert provider.introspection_count == 2


def test_concurrent_requests_share_one_introspection(provider, tokens):
    provider.answers[RESIDENT_TOKEN] = _active()
    provider.stall = threading.Event()
    records = _records(_resident(provider))
    results = []
    threads = [threading.Thread(target=lambda: results.append(_decide(RESIDENT_TOKEN, records, tokens)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(500):   # until the leader's call reached the server
        if provider.introspection_count:
            break
        threading.Event().wait(0.01)
    provider.stall.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8 and all(isinstance(result, Allow) for result in results)
    assert provider.introspection_count == 1


def test_cache_key_is_the_token_digest_not_the_token(provider):
    client = IntrospectionClient(sync_token=lambda: "pcs_sync")
    provider.answers[RESIDENT_TOKEN] = _active()
    from authz_server.index.key_managers import compile_key_manager

    client.introspect(compile_key_manager(_resident(provider)), RESIDENT_TOKEN, time.time())
    assert RESIDENT_TOKEN not in repr(list(client._cache._items))
    client.close()


def test_missing_sync_token_is_unavailable(provider):
    bundle = services(sync_token=None)
    try:
        assert _decide(RESIDENT_TOKEN, _records(_resident(provider)), bundle).code == "key_manager_unavailable"
    finally:
        bundle.stop()
    assert provider.introspection_count == 0


def test_pattern_match_is_preferred_and_patternless_managers_never_see_it(provider, tokens):
    provider.answers[RESIDENT_TOKEN] = {"active": False}
    records = _records(_resident(provider), _external(provider))
    assert _decide(RESIDENT_TOKEN, records, tokens).code == "token_inactive"
    assert provider.authorizations == ["Bearer pcs_sync"]   # the external one was not asked


def test_token_matching_no_pattern_goes_to_patternless_managers(provider, tokens):
    token = "external-opaque-token"
    provider.answers[token] = _active()
    records = _records(_resident(provider), _external(provider), key_manager_id="km-idp")
    decision = _decide(token, records, tokens)
    assert isinstance(decision, Allow) and decision.key_manager_id == "km-idp"


@pytest.mark.parametrize(
    "resident_kwargs,allowed,code",
    [({"enabled": False}, (), "key_manager_disabled"),
     ({}, ("IdP",), "key_manager_not_allowed"),
     ({"accepts_reference": False}, (), "token_malformed"),
     ({"pattern": "^nope$"}, (), "token_malformed")],
    ids=["pattern-matches-disabled-manager", "pattern-matches-manager-not-allowed", "no-manager-accepts-opaque",
         "pattern-does-not-match"],
)
def test_no_usable_key_manager(provider, tokens, resident_kwargs, allowed, code):
    records = _records(_resident(provider, **resident_kwargs))
    records[1] = oauth_api(allowed=allowed)
    assert _decide(RESIDENT_TOKEN, records, tokens).code == code
    assert provider.introspection_count == 0


def test_at_most_a_few_patternless_managers_are_asked(provider, tokens):
    managers = [_external(provider) for _ in range(5)]
    for n, manager in enumerate(managers):
        manager.id, manager.name, manager.issuer = f"km-{n}", f"IdP {n}", f"https://idp{n}"
    assert _decide("some-opaque-token", _records(*managers), tokens).code == "token_inactive"
    assert provider.introspection_count == 3
