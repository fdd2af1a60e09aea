"""A key manager's token-format pattern cannot stall a worker (issue 14).

The pattern is matched against every caller's opaque token on the decision loop. Under
Python's `re`, `(a+)+$` against `"a" * 40 + "!"` backtracks 2^40 times: one request would
hold a worker for hours. Patterns are compiled by RE2 (linear time): the worker answers
that token at once, admin_api refuses with 400 what RE2 cannot compile (naming the field),
and a pattern stored before that check makes the key manager accept no opaque token."""

from __future__ import annotations

from typing import Iterator

import pytest

from authz_server.index.key_managers import compile_key_manager
from portcullis_shared.token_format import MAX_MATCHED_LENGTH, TokenFormat, TokenFormatError
from tests.authz_server.checks import check_request
from tests.authz_server.factories import PIZZA_BASE
from tests.authz_server.oauth import make_key_manager, oauth_world

from .admin_world import AdminWorld, start_admin_world, stop_admin_world
from .grpc_check import Served, serve

CATASTROPHIC = [
    pytest.param(r"(a+)+$", "a" * 40 + "!", id="nested-plus"),
    pytest.param(r"(a|aa)+$", "a" * 60 + "!", id="overlapping-alternation"),
    pytest.param(r"(a|a?)+b", "a" * 40, id="optional-in-repeat"),
    pytest.param(r"([a-z0-9]+_?)+pct", "abcdefghij" * 6 + "!", id="token-shaped"),
]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    # No token services: a token the pattern matched would need introspection, which
    # these rows never reach; a refused match is decided by the index alone.
    running = serve()
    yield running
    running.close()


def _bearer(token: str):
    return check_request(PIZZA_BASE + "/menu", headers={"authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("pattern", "token"), CATASTROPHIC)
def test_a_catastrophic_pattern_does_not_stall_the_worker(served: Served, pattern: str, token: str):
    key_manager = make_key_manager(accepts_jwt=False, accepts_reference=True, pattern=pattern,
                                   introspection_endpoint="http://127.0.0.1:9/introspect")
    served.load(oauth_world(key_manager))
    # Check has a 10 s deadline (grpc_check): under backtracking this call would not end.
    assert served.reason(_bearer(token)) == "token_malformed"
    # And the worker pool still answers other callers.
    assert served.reason(_bearer("x" + token)) == "token_malformed"


@pytest.mark.parametrize(("pattern", "token"), CATASTROPHIC)
def test_the_compiled_pattern_refuses_the_token_in_full(pattern: str, token: str):
    policy = compile_key_manager(make_key_manager(accepts_reference=True, pattern=pattern,
                                                  introspection_endpoint="http://127.0.0.1:9/introspect"))
    assert policy.accepts_reference_tokens
    assert policy.accepts_opaque(token) is False


def test_a_token_longer_than_the_bound_matches_no_pattern():
    token_format = TokenFormat(r"a+")
    assert token_format.fullmatch("a" * MAX_MATCHED_LENGTH)
    assert not token_format.fullmatch("a" * (MAX_MATCHED_LENGTH + 1))


def test_dollar_does_not_match_before_a_trailing_newline():
    # Python's `re` lets "pct_x\n" through `pct_[a-z]+$` with match(); RE2's `$` is the end.
    assert not TokenFormat(r"^pct_[a-z]+$").fullmatch("pct_x\n")
    assert TokenFormat(r"^pct_[a-z]+$").fullmatch("pct_x")


UNSUPPORTED = [
    pytest.param(r"(?=pct_)pct_\w+", id="lookahead"),
    pytest.param(r"(?<=x)pct_\w+", id="lookbehind"),
    pytest.param(r"(?!x)\w+", id="negative-lookahead"),
    pytest.param(r"(a)\1", id="backreference"),
    pytest.param(r"(?P<p>a)(?P=p)", id="named-backreference"),
    pytest.param(r"^(pct_", id="unbalanced"),
]


@pytest.mark.parametrize("pattern", UNSUPPORTED)
def test_a_pattern_stored_before_the_check_makes_the_key_manager_accept_no_opaque_token(pattern: str):
    with pytest.raises(TokenFormatError):
        TokenFormat(pattern)
    policy = compile_key_manager(make_key_manager(accepts_reference=True, pattern=pattern,
                                                  introspection_endpoint="http://127.0.0.1:9/introspect"))
    assert policy.accepts_reference_tokens is False and policy.token_format is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminWorld]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
        admin = start_admin_world(tmp_path_factory.mktemp("admin-token-format"))
        yield admin
        stop_admin_world(admin)


def _key_manager(name: str, pattern: str) -> dict:
    return {"name": name, "type": "OIDC", "issuer": f"https://{name}.example.test",
            "introspection_endpoint": f"https://{name}.example.test/introspect",
            "token_handling": {"accepts_reference_tokens": True, "token_format_pattern": pattern}}


@pytest.mark.parametrize("pattern", UNSUPPORTED)
def test_the_admin_api_refuses_a_pattern_re2_cannot_compile(world: AdminWorld, pattern: str):
    before = world.fingerprint()
    response = world.rest.post("/v1/key-managers", json=_key_manager("refused", pattern), headers=world.auth)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert "token_handling.token_format_pattern" in detail and "RE2" in detail, detail
    assert world.fingerprint() == before


@pytest.mark.parametrize("pattern", [r"^pct_[A-Za-z0-9_-]{43}$", r"(a+)+$", r"(?i)tok-[0-9a-f]{32}"],
                         ids=["resident", "catastrophic-for-re", "case-insensitive"])
def test_the_admin_api_accepts_what_re2_compiles(world: AdminWorld, pattern: str):
    name = f"accepted-{abs(hash(pattern)) % 10**8}"
    response = world.rest.post("/v1/key-managers", json=_key_manager(name, pattern), headers=world.auth)
    assert response.status_code == 201, response.text
    assert response.json()["token_handling"]["token_format_pattern"] == pattern
