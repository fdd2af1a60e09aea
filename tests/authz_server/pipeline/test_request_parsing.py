import pytest

from authz_server.denials import BadRequest
from authz_server.pipeline.client_ip import resolve_client_ip
from authz_server.pipeline.paths import parse_path, parse_query, split_target


@pytest.mark.parametrize(
    "raw,segments",
    [
        ("/pizzashack/1.0.0/menu", ("pizzashack", "1.0.0", "menu")),
        ("/pizzashack/1.0.0/menu/", ("pizzashack", "1.0.0", "menu")),
        ("/a/m%65nu", ("a", "menu")),
        ("/a/caf%C3%A9", ("a", "café")),
        ("/a/b%20c", ("a", "b c")),
        ("/a/b+c", ("a", "b+c")),
        ("/", ()),
    ],
    ids=lambda v: str(v),
)
def test_path_segments_are_decoded_after_splitting(raw, segments):
    assert parse_path(raw) == segments


@pytest.mark.parametrize(
    "raw",
    ["relative", "/a/%zz", "/a/%4", "/a/%", "/a/%C3", "/a/../b", "/a/./b", "/a/%2e%2e/b", "/a/%2E/b",
     "/a%2Fb", "/a%5Cb", "/a%00b", "*"],
    ids=lambda v: v,
)
def test_malformed_or_ambiguous_paths_are_bad_requests(raw):
    with pytest.raises(BadRequest):
        parse_path(raw)


def test_query_is_form_decoded_and_keeps_raw_names():
    params = parse_query("apikey=a%2Bb&x=1+2&api%6Bey=c&flag&&")
    assert [(p.raw_name, p.name, p.value) for p in params] == [
        ("apikey", "apikey", "a+b"),
        ("x", "x", "1 2"),
        ("api%6Bey", "apikey", "c"),
        ("flag", "flag", ""),
    ]


@pytest.mark.parametrize("raw", ["apikey=%zz", "a%=1", "k=%ff"], ids=lambda v: v)
def test_malformed_query_is_a_bad_request(raw):
    with pytest.raises(BadRequest):
        parse_query(raw)


@pytest.mark.parametrize(
    "target,query,expected",
    [("/a?x=1", "", ("/a", "x=1")), ("/a", "y=2", ("/a", "y=2")), ("/a?x=1#frag", "", ("/a", "x=1")), ("/a?", "", ("/a", ""))],
    ids=["inline", "separate-field", "fragment", "empty"],
)
def test_split_target(target, query, expected):
    assert split_target(target, query) == expected


@pytest.mark.parametrize(
    "peer,xff,hops,expected",
    [
        ("10.0.0.1", ["198.51.100.1"], 0, "10.0.0.1"),
        ("10.0.0.1", ["198.51.100.1"], 1, "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1"], 1, "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6, 198.51.100.1, 10.0.0.2"], 2, "198.51.100.1"),
        ("10.0.0.1", ["6.6.6.6", "198.51.100.1"], 1, "198.51.100.1"),
        ("10.0.0.1", ["198.51.100.1"], 2, "10.0.0.1"),
        ("10.0.0.1", [], 1, "10.0.0.1"),
        ("10.0.0.1", ["2001:db8::5"], 1, "2001:db8::5"),
        ("10.0.0.1", ["[2001:db8::5]:1234"], 1, "2001:db8::5"),
        ("::ffff:10.0.0.1", [], 0, "10.0.0.1"),
        ("10.0.0.1", ["garbage"], 1, None),
    ],
    ids=["hops-0-ignores-xff", "hops-1", "hops-1-spoofed-left-ignored", "hops-2", "several-headers",
         "fewer-entries-than-hops", "no-xff", "v6-hop", "bracketed-v6-hop", "mapped-peer", "garbage-hop"],
)
def test_client_ip(peer, xff, hops, expected):
    ip = resolve_client_ip(peer, xff, hops)
    assert (str(ip) if ip is not None else None) == expected
