import pytest

from authz_server.index.errors import PolicyError
from authz_server.index.referrers import ReferrerAllowList, compile_referrer, parse_referer


def _allows(patterns, referer):
    return ReferrerAllowList(tuple(compile_referrer(p) for p in patterns)).allows(referer)


@pytest.mark.parametrize(
    "pattern,referer,allowed",
    [
        ("*.example.com/*", "https://www.example.com/page", True),
        ("*.example.com/*", "https://a.b.example.com/", True),
        ("*.example.com/*", "https://WWW.Example.COM/x", True),
        ("*.example.com/*", "http://www.example.com:8443/x?q=1#f", True),
        ("*.example.com/*", "https://example.com/", False),
        ("*.example.com/*", "https://example.com.evil.io/", False),
        ("*.example.com/*", "https://evilexample.com/", False),
        ("*.example.com/*", "https://www.example.com.evil.io/", False),
        ("*.example.com/*", "https://www.evil.io/?r=.example.com", False),
        ("*.example.com/*", "https://www.example.com@evil.io/", False),
        ("*.example.com/*", "https://evil.io\\@www.example.com/", False),
        ("*.example.com/*", "https://.example.com/", False),
        ("*.example.com/*", "https://www..example.com/", False),
        ("*.example.com/*", "www.example.com/page", False),
        ("sub.example.com/*", "https://sub.example.com/any/path", True),
        ("sub.example.com/*", "https://sub.example.com", True),
        ("sub.example.com/*", "https://x.sub.example.com/", False),
        ("sub.example.com/*", "https://sub.example.co/", False),
        ("www.example.com/path", "https://www.example.com/path", True),
        ("www.example.com/path", "https://www.example.com/path?x=1", True),
        ("www.example.com/path", "https://www.example.com/path/more", False),
        ("www.example.com/path", "https://www.example.com/Path", False),
        ("www.example.com/path", "https://www.example.com/pathology", False),
        ("www.example.com/docs/*", "https://www.example.com/docs/a/b", True),
        ("www.example.com/docs/*", "https://www.example.com/docs", True),
        ("www.example.com/docs/*", "https://www.example.com/docsevil", False),
        ("https://www.example.com:443/*", "http://www.example.com/x", True),
        ("WWW.EXAMPLE.COM/*", "https://www.example.com/", True),
        ("www.example.com", "https://www.example.com/", True),
        ("www.example.com", "https://www.example.com/deep", False),
    ],
    ids=lambda v: str(v),
)
def test_referrer_patterns(pattern, referer, allowed):
    assert _allows([pattern], referer) is allowed


@pytest.mark.parametrize("referer", [None, "", "   ", "not a url", "https://", "https:///path", "https://host:port/"])
def test_missing_or_unparseable_referer_is_refused(referer):
    assert not _allows(["*.example.com/*", "host/*"], referer)


@pytest.mark.parametrize(
    "pattern",
    ["", "*.*.example.com/*", "exa mple.com/*", "www.example.com/a*b", "*example.com/*", "www.example.com/a*", "user@host/*"],
)
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(PolicyError):
        compile_referrer(pattern)


def test_parse_referer_ignores_scheme_port_query_fragment():
    parsed = parse_referer("HTTPS://Shop.Example.com:8080/a/b?c=d#e")
    assert (parsed.host, parsed.path) == ("shop.example.com", "/a/b")
