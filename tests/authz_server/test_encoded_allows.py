"""EncodedAllows (the native front end's reused allow bytes): every answer it gives is
byte for byte what building the CheckResponse afresh gives, whatever came before it."""

from __future__ import annotations

import pytest
from envoy.service.auth.v3 import external_auth_pb2

from authz_server.envoy_adapter import EncodedAllows, allow_response, to_request_context
from authz_server.pipeline import Allow, decide

from .checks import check_request
from .factories import NOW, PIZZA_BASE, PROD_KEY, SANDBOX_KEY, index_of, make_key, pizza_world

# Calls that differ in one thing the answer depends on, each after all the others.
CALLS = [
    (PIZZA_BASE + "/menu", {"apikey": PROD_KEY}),
    (PIZZA_BASE + "/menu", {"apikey": SANDBOX_KEY}),
    (PIZZA_BASE + "/menu", {"apikey": "pck_second-production-key"}),
    (PIZZA_BASE + "/menu", {"apikey": PROD_KEY, "x-portcullis-admin": "1"}),
    (PIZZA_BASE + "/menu", {"apikey": PROD_KEY, "authorization": "Basic abc", "x-http-method-override": "DELETE"}),
    (PIZZA_BASE + "/menu?apikey=" + PROD_KEY, {"x-portcullis-environment": "sandbox", "referer": "https://a/"}),
    (PIZZA_BASE + "/menu?api%6Bey=" + PROD_KEY + "&x=1", {}),
    (PIZZA_BASE + "/echo/a", {"apikey": PROD_KEY}),
    (PIZZA_BASE + "/open", {}),
    (PIZZA_BASE + "/open", {"x-jwt-assertion": "sent-by-the-client"}),
]


def _world():
    return [*pizza_world(), make_key("key-2", "pck_second-production-key")]


def _allowed(index, path, headers):
    context = to_request_context(check_request(path, headers=headers))
    decision = decide(context, index, NOW)
    assert isinstance(decision, Allow), decision
    return decision, context


@pytest.mark.parametrize("rounds", [1, 3])
def test_every_reused_answer_is_the_one_built_afresh(rounds):
    index = index_of(*_world())
    encoded = EncodedAllows()
    for _ in range(rounds):
        for path, headers in CALLS:
            decision, context = _allowed(index, path, headers)
            assert encoded.encoded(decision, context, index) == allow_response(decision, context).SerializeToString()


def test_repeated_calls_are_answered_from_the_table():
    index = index_of(*_world())
    encoded = EncodedAllows()
    for _ in range(3):
        for path, headers in CALLS:
            encoded.encoded(*_allowed(index, path, headers), index)
    assert len(encoded._generation[1]) == len(CALLS)


def test_a_new_index_starts_a_new_table():
    world = _world()
    first, second = index_of(*world), index_of(*world, revision=2)
    encoded = EncodedAllows()
    decision, context = _allowed(first, *CALLS[0])
    encoded.encoded(decision, context, first)
    assert len(encoded._generation[1]) == 1
    decision, context = _allowed(second, *CALLS[0])
    assert encoded.encoded(decision, context, second) == allow_response(decision, context).SerializeToString()
    assert encoded._generation[0] is second and len(encoded._generation[1]) == 1


def test_the_table_is_bounded():
    index = index_of(*_world())
    encoded = EncodedAllows(max_entries=3)
    for path, headers in CALLS:
        encoded.encoded(*_allowed(index, path, headers), index)
        assert len(encoded._generation[1]) <= 3


PER_CALL = [
    ((("RateLimit-Policy", '"subscription";q=5;w=60'), ("RateLimit", '"subscription";r=4;t=60')), ()),
    ((), ("subscription",)),
    ((("RateLimit-Policy", '"application";q=10;w=60'),), ("application", "api")),
    # Lengths past one varint byte, at every level of nesting.
    ((("RateLimit-Policy", "x" * 200), ("RateLimit", "y" * 20_000)), ("z" * 300,)),
    # The field names as the throttle stage spells them (the RateLimit-Policy bytes kept per
    # value), with values whose header, option or field length crosses one byte.
    *(((("ratelimit-policy", '"subscription";q=5;w=60'), ("ratelimit", "r" * size)), ())
      for size in (100, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 125, 127, 128, 129)),
    ((("ratelimit-policy", "p" * 130), ("ratelimit", '"subscription";r=4;t=60')), ()),
]


@pytest.mark.parametrize(("rate_limit_headers", "over_quota"), PER_CALL)
def test_per_call_fields_appended_to_a_reused_answer_parse_as_the_answer_built_afresh(rate_limit_headers,
                                                                                      over_quota):
    index = index_of(*_world())
    encoded = EncodedAllows()
    for path, headers in CALLS:
        plain, context = _allowed(index, path, headers)
        encoded.encoded(plain, context, index)     # the entry the counted call reuses
        counted = plain._replace(rate_limit_headers=rate_limit_headers, over_quota=over_quota)
        reused = external_auth_pb2.CheckResponse.FromString(encoded.encoded(counted, context, index))
        assert reused == allow_response(counted, context)
        # The entry is the answer without them: the next uncounted call is unchanged.
        assert encoded.encoded(plain, context, index) == allow_response(plain, context).SerializeToString()
    assert len(encoded._generation[1]) == len(CALLS)
