"""Hostile API key requests, each a named row, through the real ext_authz gRPC servicer
(127.0.0.1:0, a fixed clock). Every row asserts the exact reason code."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.service.auth.v3 import external_auth_pb2

from tests.authz_server.checks import check_request
from tests.authz_server.factories import (
    NOW,
    PIZZA_BASE,
    PROD_KEY,
    SANDBOX_KEY,
    make_api,
    make_key,
    make_subscription,
    pizza_world,
)

from .grpc_check import Served, serve

OTHER_KEY = "pck_other-api-key-value"
REVOKED_KEY = "pck_revoked-key-value"
EXPIRED_KEY = "pck_expired-key-value"
IP_KEY = "pck_ip-restricted-key-value"
REFERER_KEY = "pck_referer-restricted-key-value"
PROD_ONLY_SANDBOX_KEY = "pck_sandbox-key-on-prod-only"
PROD_ONLY_BASE = "/prodonly/1.0.0"
PEER = "203.0.113.7"
ALLOWED_IP = "198.51.100.1"


def _world() -> list:
    return [
        *pizza_world(),
        make_api("api-other", "/other/1.0"),
        make_key("key-other", OTHER_KEY, api_id="api-other"),
        make_key("key-revoked", REVOKED_KEY, revoked=True),
        make_key("key-expired", EXPIRED_KEY, expires_at=int(NOW) - 1),
        make_key("key-ip", IP_KEY, allowed_ips=[ALLOWED_IP, "2001:db8::/32"]),
        make_key("key-referer", REFERER_KEY, allowed_referrers=["*.example.com/*", "www.shop.test/app"]),
        make_api("api-prod-only", PROD_ONLY_BASE, sandbox=""),
        make_subscription("sub-prod-only", api_id="api-prod-only"),
        make_key("key-prod-only-sandbox", PROD_ONLY_SANDBOX_KEY, api_id="api-prod-only", environment=2),
    ]


@pytest.fixture(scope="module")
def served():
    running = serve(clock=lambda: NOW)
    running.load(_world())
    yield running
    running.close()


def _request(target: str, headers: dict[str, str] | None = None, peer: str = PEER,
             header_map: list[tuple[str, str]] | None = None) -> external_auth_pb2.CheckRequest:
    return check_request(target, headers=headers, peer=peer, header_map=header_map)


MENU = PIZZA_BASE + "/menu"

# (id, request arguments, expected reason)
KEY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("control-valid-key", {"target": MENU, "headers": {"apikey": PROD_KEY}}, "allowed"),
    ("another-apis-key", {"target": MENU, "headers": {"apikey": OTHER_KEY}}, "api_key_wrong_api"),
    ("another-apis-key-in-query", {"target": MENU + "?apikey=" + OTHER_KEY}, "api_key_wrong_api"),
    ("revoked", {"target": MENU, "headers": {"apikey": REVOKED_KEY}}, "api_key_revoked"),
    ("expired", {"target": MENU, "headers": {"apikey": EXPIRED_KEY}}, "api_key_expired"),
    ("unknown", {"target": MENU, "headers": {"apikey": "pck_" + "A" * 43}}, "api_key_invalid"),
    ("empty-key-header", {"target": MENU, "headers": {"apikey": ""}}, "api_key_invalid"),
    ("sandbox-key-on-production-only-api",
     {"target": PROD_ONLY_BASE + "/menu", "headers": {"apikey": PROD_ONLY_SANDBOX_KEY}}, "environment_unavailable"),
    ("sandbox-key-with-spoofed-environment-header",
     {"target": PROD_ONLY_BASE + "/menu", "headers": {"apikey": PROD_ONLY_SANDBOX_KEY, "x-portcullis-environment": "production"}},
     "environment_unavailable"),
    # X-Forwarded-For is the client's to write: with no trusted hop it is never read
    ("xff-spoofed-allowed-ip", {"target": MENU, "headers": {"apikey": IP_KEY, "x-forwarded-for": ALLOWED_IP}}, "ip_not_allowed"),
    ("xff-spoofed-chain", {"target": MENU, "headers": {"apikey": IP_KEY, "x-forwarded-for": f"{ALLOWED_IP}, {ALLOWED_IP}"}},
     "ip_not_allowed"),
    ("xff-spoofed-ipv6", {"target": MENU, "headers": {"apikey": IP_KEY, "x-forwarded-for": "2001:db8::1"}}, "ip_not_allowed"),
    ("x-real-ip-spoofed", {"target": MENU, "headers": {"apikey": IP_KEY, "x-real-ip": ALLOWED_IP}}, "ip_not_allowed"),
    ("forwarded-spoofed", {"target": MENU, "headers": {"apikey": IP_KEY, "forwarded": f"for={ALLOWED_IP}"}}, "ip_not_allowed"),
    ("peer-ipv4-mapped-outside", {"target": MENU, "headers": {"apikey": IP_KEY}, "peer": "::ffff:203.0.113.7"}, "ip_not_allowed"),
    ("peer-unparseable", {"target": MENU, "headers": {"apikey": IP_KEY}, "peer": "not-an-ip"}, "ip_not_allowed"),
    ("peer-allowed", {"target": MENU, "headers": {"apikey": IP_KEY}, "peer": ALLOWED_IP}, "allowed"),
    ("peer-allowed-ipv4-mapped", {"target": MENU, "headers": {"apikey": IP_KEY}, "peer": "::ffff:" + ALLOWED_IP}, "allowed"),
    # referrer look-alikes
    *[(f"referer-{name}", {"target": MENU, "headers": {"apikey": REFERER_KEY, "referer": referer}}, "referer_not_allowed")
      for name, referer in [
          ("suffix-domain", "https://example.com.evil.io/"),
          ("glued-domain", "https://evilexample.com/"),
          ("bare-domain", "https://example.com/"),
          ("userinfo", "https://www.example.com@evil.io/"),
          ("userinfo-encoded-at", "https://www.example.com%40evil.io/"),
          ("backslash", "https://evil.io\\www.example.com/"),
          ("path-contains-host", "https://evil.io/www.example.com/"),
          ("query-contains-host", "https://evil.io/?r=www.example.com"),
          ("trailing-dot", "https://www.example.com./"),
          ("exact-path-prefix", "https://www.shop.test/app-evil"),
          ("exact-path-child", "https://www.shop.test/app/x"),
          ("exact-path-case", "https://www.shop.test/APP"),
          ("no-scheme", "www.example.com/"),
          ("whitespace", "https://www.example.com /"),
          ("control-char", "https://www.example.com\x01/"),
          ("empty", ""),
          ("idn-lookalike", "https://www.ex\u0430mple.com/"),
      ]],
    ("referer-missing", {"target": MENU, "headers": {"apikey": REFERER_KEY}}, "referer_not_allowed"),
    ("referer-subdomain", {"target": MENU, "headers": {"apikey": REFERER_KEY, "referer": "https://a.b.example.com:8443/x?y#z"}},
     "allowed"),
    ("referer-host-case", {"target": MENU, "headers": {"apikey": REFERER_KEY, "referer": "https://WWW.Shop.Test/app"}}, "allowed"),
    # the key in more than one place
    ("header-and-query-differ", {"target": MENU + "?apikey=" + OTHER_KEY, "headers": {"apikey": PROD_KEY}},
     "credential_ambiguous"),
    ("header-and-query-same", {"target": MENU + "?apikey=" + PROD_KEY, "headers": {"apikey": PROD_KEY}}, "allowed"),
    ("query-repeated-differ", {"target": MENU + f"?apikey={PROD_KEY}&apikey={OTHER_KEY}"}, "credential_ambiguous"),
    ("header-repeated-differ", {"target": MENU, "header_map": [("apikey", PROD_KEY), ("apikey", OTHER_KEY)]},
     "credential_ambiguous"),
    ("valid-then-revoked", {"target": MENU + f"?apikey={PROD_KEY}&apikey={REVOKED_KEY}"}, "credential_ambiguous"),
    # percent-encoding tricks in the query string
    ("encoded-name", {"target": MENU + "?api%6Bey=" + PROD_KEY}, "allowed"),
    ("encoded-name-upper-hex", {"target": MENU + "?%41PIKEY=" + PROD_KEY}, "credential_missing"),
    ("encoded-name-and-plain-differ", {"target": MENU + f"?api%6Bey={PROD_KEY}&apikey={OTHER_KEY}"}, "credential_ambiguous"),
    ("encoded-name-vs-header", {"target": MENU + f"?%61pikey={OTHER_KEY}", "headers": {"apikey": PROD_KEY}},
     "credential_ambiguous"),
    ("double-encoded-name", {"target": MENU + "?api%256Bey=" + PROD_KEY}, "credential_missing"),
    ("nul-in-name", {"target": MENU + "?apikey%00=" + PROD_KEY}, "credential_missing"),
    ("nul-after-value", {"target": MENU + "?apikey=" + PROD_KEY + "%00"}, "api_key_invalid"),
    ("nul-before-value", {"target": MENU + "?apikey=%00" + PROD_KEY}, "api_key_invalid"),
    ("encoded-value", {"target": MENU + "?apikey=" + "".join(f"%{ord(c):02X}" for c in PROD_KEY)}, "allowed"),
    ("double-encoded-value", {"target": MENU + "?apikey=" + PROD_KEY.replace("_", "%255F")}, "api_key_invalid"),
    ("plus-in-name", {"target": MENU + "?api+key=" + PROD_KEY}, "credential_missing"),
    ("plus-as-space-in-value", {"target": MENU + "?apikey=" + PROD_KEY.replace("-", "+")}, "api_key_invalid"),
    ("encoded-plus-in-value", {"target": MENU + "?apikey=" + PROD_KEY + "%2B"}, "api_key_invalid"),
    ("case-of-name", {"target": MENU + "?APIKEY=" + PROD_KEY}, "credential_missing"),
    ("semicolon-separator", {"target": MENU + "?x=1;apikey=" + PROD_KEY}, "credential_missing"),
    ("value-with-equals", {"target": MENU + "?apikey=" + PROD_KEY + "=x"}, "api_key_invalid"),
    ("truncated-escape", {"target": MENU + "?apikey=%E0%A4%A"}, "bad_request"),
    ("overlong-utf8", {"target": MENU + "?apikey=%C0%AF"}, "bad_request"),
    ("lone-percent-in-name", {"target": MENU + "?api%key=" + PROD_KEY}, "bad_request"),
    ("fragment-hides-key", {"target": MENU + "#?apikey=" + PROD_KEY}, "credential_missing"),
    ("empty-pairs", {"target": MENU + "?&&&apikey=" + PROD_KEY + "&&"}, "allowed"),
]


@pytest.mark.parametrize(("arguments", "expected"), [(args, code) for _, args, code in KEY_CASES],
                         ids=[case_id for case_id, _, _ in KEY_CASES])
def test_hostile_api_key_request_gets_its_reason(served: Served, arguments, expected):
    assert served.reason(_request(**arguments)) == expected


@pytest.mark.parametrize("spelling", ["apikey", "api%6Bey", "%61pi%6b%65y", "api%6bey"])
def test_every_spelling_of_the_key_parameter_is_stripped(served: Served, spelling):
    response = served.check(_request(f"{MENU}?a=1&{spelling}={PROD_KEY}&b=2"))
    assert response.HasField("ok_response")
    assert spelling in response.ok_response.query_parameters_to_remove
    assert "apikey" in response.ok_response.headers_to_remove


def test_client_sent_portcullis_headers_never_reach_the_backend(served: Served):
    headers = {"apikey": PROD_KEY, "x-portcullis-api-id": "api-other", "X-Portcullis-Environment": "sandbox"}
    response = served.check(_request(MENU, headers))
    assert response.HasField("ok_response")
    assert "x-portcullis-api-id" in response.ok_response.headers_to_remove
    assert [(h.header.key, h.header.value) for h in response.ok_response.headers] == [("x-portcullis-environment", "production")]
