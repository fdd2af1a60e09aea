"""Property-based tests (hypothesis): the token parser, path and resource matching, IP and
referrer matching, and decide() with random requests. Never an exception (no
internal_error), never an allow for a credential that is not valid.

Bounded: the conftest profile caps examples and has no deadline."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import string
import time
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz_server.denials import Denial
from authz_server.index.ip_rules import IpAllowList, parse_address, parse_network
from authz_server.index.referrers import ReferrerAllowList, compile_referrer, parse_referer
from authz_server.index.resources import best_match, compile_resource, split_path
from authz_server.index.errors import PolicyError
from authz_server.pipeline import Allow, decide
from authz_server.pipeline.paths import parse_path, parse_query
from authz_server.credentials.jwt_parse import MAX_TOKEN_LENGTH, check_bearer_syntax, parse_unverified
from tests.authz_server.factories import PIZZA_BASE, PROD_KEY, SANDBOX_KEY, index_of, make_key, make_request
from tests.authz_server.oauth import KIT_JWKS, b64, claims, make_key_manager, mint, oauth_world, services

VALID_KEYS = {PROD_KEY, SANDBOX_KEY}

# --- the token parser ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
b64url_text = st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=60)


def _json_object_of(segment: str) -> dict | None:
    """What a base64url segment holds when it is a JSON object; None otherwise (the
    test's own reading of RFC 7515 compact serialization, not the parser's)."""
    if set(segment) - set(string.ascii_letters + string.digits + "-_"):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _is_compact_jws(text: str) -> bool:
    parts = text.split(".")
    return (len(parts) == 3 and len(text) <= MAX_TOKEN_LENGTH and _json_object_of(parts[0]) is not None
            and _json_object_of(parts[1]) is not None and not set(parts[2]) - set(string.ascii_letters + string.digits + "-_"))


def _parse(text: str):
    check_bearer_syntax(text)
    return parse_unverified(text)


def _assert_refused_unless_well_formed(text: str) -> None:
    """Junk is refused with a denial (never another exception); only a well-formed JWS may
    get through, and then with what its segments hold. The parser may refuse more (e.g.
    duplicate members): it is never required to accept."""
    if not _is_compact_jws(text):
        with pytest.raises(Denial):
            _parse(text)
        return
    try:
        parsed = _parse(text)
    except Denial:
        return
    header, payload, _ = text.split(".")
    assert (dict(parsed.header), dict(parsed.claims)) == (_json_object_of(header), _json_object_of(payload))


@given(st.text(max_size=300))
def test_the_token_parser_refuses_any_text_with_a_denial(text):
    _assert_refused_unless_well_formed(text)


@given(st.lists(b64url_text | st.text(max_size=20), min_size=1, max_size=7).map(".".join))
def test_the_token_parser_refuses_dotted_junk_with_a_denial(text):
    _assert_refused_unless_well_formed(text)


@pytest.mark.parametrize("text", ["e30.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"], ids=["empty-objects", "rs256-header"])
def test_the_well_formedness_oracle_accepts_real_tokens(text):
    # The two tests above would pass vacuously if the oracle called everything junk.
    assert _is_compact_jws(text) and _parse(text) is not None
    assert _is_compact_jws(mint())


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       st.dictionaries(st.sampled_from(["iss", "exp", "nbf", "iat", "kid", "alg", "azp", "scope"]) | st.text(max_size=6),
                       json_values, max_size=6))
def test_parsed_header_and_claims_round_trip(header, payload):
    token = ".".join((b64(json.dumps(header)), b64(json.dumps(payload)), b64(b"sig")))
    parsed = parse_unverified(token)
    assert dict(parsed.header) == header and dict(parsed.claims) == payload


# --- decide() with random requests -----------------------------------------------------------


@pytest.fixture(scope="module")
def token_world(idp_server):
    idp_server.reset(jwks_document=KIT_JWKS)
    tokens = services(timeout=1.0, min_refresh=3600)
    index = index_of(*oauth_world(make_key_manager(jwks_uri=idp_server.jwks_uri), extra=(make_key(),)))
    yield index, tokens
    tokens.stop()


header_names = st.sampled_from(["apikey", "authorization", "referer", "x-forwarded-for", "x-portcullis-environment",
                                "host", "cookie"]) | st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=12)
header_values = st.sampled_from(sorted(VALID_KEYS) + ["Bearer ", "Bearer eyJ.e30.", "bearer x"]) | st.text(max_size=80)
paths = st.sampled_from(["/menu", "/orders", "/open", "/echo/x", "/missing", ""]).map(lambda p: PIZZA_BASE + p) | st.text(
    alphabet=string.ascii_letters + "/%.?&=+", max_size=40).map(lambda p: "/" + p)


def _forged_token(header: dict, payload: dict) -> str:
    return ".".join((b64(json.dumps(header)), b64(json.dumps(payload)), b64(b"not-a-signature")))


tampered_tokens = st.builds(
    _forged_token,
    st.fixed_dictionaries({"alg": st.sampled_from(["RS256", "ES256", "none", "HS256", "PS256", "RS512"]),
                           "kid": st.sampled_from(["rsa-1", "ec-1", "x"])}),
    st.builds(lambda overrides: claims(**overrides), st.dictionaries(st.sampled_from(["iss", "exp", "azp", "scope"]),
                                                                       json_values, max_size=3)),
)


@given(target=paths, headers=st.dictionaries(header_names, st.lists(header_values, min_size=1, max_size=2), max_size=5),
       method=st.sampled_from(["GET", "POST", "DELETE", "OPTIONS"]))
@settings(max_examples=150)
def test_decide_never_fails_and_never_allows_without_a_valid_credential(token_world, target, headers, method):
    index, tokens = token_world
    try:
        request = make_request(target, method=method, headers=headers)
    except Denial as denial:
        assert denial.code == "bad_request"
        return
    decision = decide(request, index, time.time(), tokens)
    assert decision.code != "internal_error"
    if isinstance(decision, Allow) and decision.identity is not None:
        assert decision.credential_kind == "api_key", "no random header is a valid token"
        assert set(request.header_values("apikey")) | set(request.query_values("apikey")) <= VALID_KEYS


@given(token=tampered_tokens | st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=200))
@settings(max_examples=100)
def test_a_forged_or_random_bearer_token_is_never_allowed(token_world, token):
    index, tokens = token_world
    request = make_request(PIZZA_BASE + "/menu", headers={"authorization": "Bearer " + token})
    decision = decide(request, index, time.time(), tokens)
    assert not isinstance(decision, Allow)
    assert decision.code != "internal_error"


def test_the_control_token_is_allowed(token_world):
    index, tokens = token_world
    request = make_request(PIZZA_BASE + "/menu", headers={"authorization": "Bearer " + mint()})
    assert isinstance(decide(request, index, time.time(), tokens), Allow)


# --- paths and resources ---------------------------------------------------------------------

segment_text = st.text(alphabet=string.ascii_letters + string.digits + "%.-_~{}*;:@!$&'()", max_size=8)


@given(st.text(max_size=80).map(lambda p: "/" + p))
def test_parse_path_never_returns_a_segment_a_backend_would_resolve_differently(raw):
    try:
        segments = parse_path(raw)
    except Denial as denial:
        assert denial.code == "bad_request"
        return
    for segment in segments:
        assert segment not in (".", "..") and "/" not in segment and "\\" not in segment and "\x00" not in segment


@given(st.text(max_size=80))
def test_parse_query_never_raises_anything_but_bad_request(raw):
    try:
        parse_query(raw)
    except Denial as denial:
        assert denial.code == "bad_request"


templates = st.lists(st.sampled_from(["a", "b", "{id}", "{x}"]) | segment_text, max_size=4).flatmap(
    lambda parts: st.sampled_from(["/" + "/".join(parts), "/" + "/".join(parts + ["*"])]))


@given(st.lists(st.tuples(st.sampled_from(["GET", "POST", "*"]), templates), min_size=1, max_size=5),
       st.lists(st.sampled_from(["a", "b", "c", ""]) | segment_text, max_size=6), st.sampled_from(["GET", "POST"]))
def test_the_best_resource_really_matches_the_path(resources, segments, method):
    compiled = []
    for resource_method, template in resources:
        try:
            compiled.append(compile_resource(resource_method, template))
        except PolicyError:
            continue
    best = best_match(compiled, method, segments)
    if best is None:
        assert all(r.specificity(method, segments) is None for r in compiled)
        return
    assert best.method in ("*", method)
    template = split_path(best.template)
    fixed = template[:-1] if best.trailing_wildcard else template
    assert len(segments) == len(fixed) or (best.trailing_wildcard and len(segments) >= len(fixed))
    for part, segment in zip(fixed, segments):
        if part.startswith("{"):
            assert segment != ""
        else:
            assert part == segment


# --- IP and referrer matching ------------------------------------------------------------------

addresses = st.ip_addresses()
networks = st.ip_addresses().flatmap(
    lambda a: st.integers(0, a.max_prefixlen).map(lambda n: ipaddress.ip_network(f"{a}/{n}", strict=False)))


@given(st.lists(networks, min_size=1, max_size=4), addresses)
def test_an_ip_is_allowed_exactly_when_a_network_holds_it(nets, address):
    allow_list = IpAllowList(tuple(parse_network(str(n)) for n in nets))
    def canonical(a):
        return a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a
    expected = any(canonical(address) in parse_network(str(n)) for n in nets
                   if parse_network(str(n)).version == canonical(address).version)
    assert allow_list.allows(address) == expected


@given(st.text(max_size=60))
def test_parse_address_never_raises(text):
    parse_address(text)


hosts = st.lists(st.sampled_from(["example", "com", "evil", "www", "io", "EXAMPLE", "exampl", "e", "xn--80a", ""]),
                 min_size=1, max_size=4).map(".".join)
referers = st.builds(
    lambda scheme, userinfo, host, port, path: f"{scheme}{userinfo}{host}{port}{path}",
    st.sampled_from(["https://", "http://", "", "//", "ftp://", "https:/"]),
    st.sampled_from(["", "user@", "www.example.com@", ":@"]),
    hosts,
    st.sampled_from(["", ":443", ":x", ":"]),
    st.sampled_from(["", "/", "/docs", "/docs/a", "\\x", "?q", "#f", "/%2e"]),
) | st.text(max_size=60)


@given(referers)
@settings(max_examples=200)
def test_a_wildcard_referrer_admits_only_real_subdomains(referer):
    allow_list = ReferrerAllowList((compile_referrer("*.example.com/*"),))
    if not allow_list.allows(referer):
        return
    parts = urlsplit(referer)
    assert parts.scheme and parts.username is None and parts.password is None, referer
    host = (parts.hostname or "").lower()
    assert host.endswith(".example.com") and host != ".example.com", referer
    assert all(host.split(".")), referer


@given(referers)
def test_an_exact_referrer_admits_only_its_host_and_path(referer):
    allow_list = ReferrerAllowList((compile_referrer("www.example.com/docs"),))
    if allow_list.allows(referer):
        parsed = parse_referer(referer)
        assert parsed is not None and (parsed.host, parsed.path) == ("www.example.com", "/docs"), referer
        assert (urlsplit(referer).hostname or "").lower() == "www.example.com", referer
