"""Each pipeline stage on its own, table-driven."""

import pytest
from portcullis.admin.v1 import admin_pb2

from authz_server import denials
from authz_server.credentials.extract import ApiKeyCredential, BearerCredential, extract_credential
from authz_server.credentials.identify import authenticate, require_credential
from authz_server.index.api_keys import KeyEnvironment
from authz_server.pipeline.ip_restriction import check_ip_restriction
from authz_server.pipeline.referrer_restriction import check_referrer_restriction
from authz_server.pipeline.route import resolve_route
from authz_server.pipeline.subscription import check_subscription

from ..factories import (
    NOW,
    PIZZA_BASE,
    PROD_KEY,
    SANDBOX,
    SANDBOX_KEY,
    Api,
    Subscription,
    index_of,
    make_api,
    make_application,
    make_key,
    make_request,
    make_subscription,
)


def identify(request, route, index, now, tokens=None):
    """Stages 2 and 3 as decide() runs them."""
    return authenticate(require_credential(request, route.api), route, index, now, tokens)


# --- route ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state,path,method,outcome",
    [
        (Api.PUBLISHED, "/menu", "GET", "/menu"),
        (Api.DEPRECATED, "/menu", "GET", "/menu"),
        (Api.CREATED, "/menu", "GET", denials.ApiNotDeployed),
        (Api.RETIRED, "/menu", "GET", denials.ApiNotDeployed),
        (Api.BLOCKED, "/menu", "GET", denials.ApiBlocked),
        (Api.BLOCKED, "/nope", "GET", denials.ApiBlocked),
        (Api.PUBLISHED, "/menu", "POST", denials.ResourceNotFound),
        (Api.PUBLISHED, "/echo/a/b", "DELETE", "/echo/*"),
        (Api.PUBLISHED, "/nope", "GET", denials.ResourceNotFound),
    ],
    ids=["published", "deprecated", "created", "retired", "blocked", "blocked-before-resource",
         "wrong-method", "wildcard-any-method", "no-resource"],
)
def test_route(state, path, method, outcome):
    index = index_of(make_api(state=state))
    request = make_request(PIZZA_BASE + path, method=method)
    if isinstance(outcome, str):
        assert resolve_route(request, index).resource.template == outcome
    else:
        with pytest.raises(outcome):
            resolve_route(request, index)


def test_route_unknown_api():
    with pytest.raises(denials.ApiNotFound):
        resolve_route(make_request("/unknown/1.0/menu"), index_of(make_api()))


# --- credential extraction --------------------------------------------------------------------

_BOTH = admin_pb2.SecuritySchemes(api_key=admin_pb2.ApiKeyScheme(header="X-Key"), oauth2=admin_pb2.OAuth2Scheme())
_NO_QUERY = admin_pb2.SecuritySchemes(api_key=admin_pb2.ApiKeyScheme(disable_query_param=True))
_OAUTH_ONLY = admin_pb2.SecuritySchemes(oauth2=admin_pb2.OAuth2Scheme())


@pytest.mark.parametrize(
    "security,target,headers,outcome",
    [
        (None, "/menu", {"apikey": "k"}, ApiKeyCredential("k")),
        (None, "/menu?apikey=k", {}, ApiKeyCredential("k")),
        (None, "/menu?apikey=k", {"apikey": "k"}, ApiKeyCredential("k")),
        (None, "/menu?apikey=k&apikey=k", {}, ApiKeyCredential("k")),
        (None, "/menu?apikey=k", {"apikey": "other"}, denials.CredentialAmbiguous),
        (None, "/menu?apikey=k&apikey=j", {}, denials.CredentialAmbiguous),
        (None, "/menu", {"apikey": ["k", "j"]}, denials.CredentialAmbiguous),
        (None, "/menu", {}, None),
        (None, "/menu", {"authorization": "Bearer t"}, None),
        (_NO_QUERY, "/menu?apikey=k", {}, None),
        (_BOTH, "/menu", {"x-key": "k"}, ApiKeyCredential("k")),
        (_BOTH, "/menu", {"apikey": "k"}, None),
        (_BOTH, "/menu", {"authorization": "Bearer tok"}, BearerCredential("tok")),
        (_BOTH, "/menu", {"authorization": "Basic abc"}, None),
        (_OAUTH_ONLY, "/menu?apikey=k", {"apikey": "k"}, None),
    ],
    ids=["header", "query", "header-and-query-same", "repeated-query-same", "header-and-query-differ",
         "repeated-query-differ", "repeated-header-differ", "none", "bearer-not-enabled",
         "query-disabled", "custom-header", "default-header-not-configured", "bearer", "basic-ignored",
         "api-key-not-enabled"],
)
def test_extract_credential(security, target, headers, outcome):
    api = index_of(make_api(security=security)).apis["api-pizza"]
    request = make_request(PIZZA_BASE + target, headers=headers)
    if isinstance(outcome, type) and issubclass(outcome, denials.Denial):
        with pytest.raises(outcome):
            extract_credential(request, api)
    else:
        assert extract_credential(request, api) == outcome


def test_credentials_never_show_their_value():
    assert "secret" not in repr(ApiKeyCredential("secret")) + repr(BearerCredential("secret"))


# --- API key authentication ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key_records,value,api_kwargs,outcome",
    [
        ([make_key()], PROD_KEY, {}, KeyEnvironment.PRODUCTION),
        ([make_key("key-sandbox", SANDBOX_KEY, environment=SANDBOX)], SANDBOX_KEY, {}, KeyEnvironment.SANDBOX),
        ([make_key()], "pck_unknown", {}, denials.ApiKeyInvalid),
        ([make_key(revoked=True)], PROD_KEY, {}, denials.ApiKeyRevoked),
        ([make_key(expires_at=int(NOW))], PROD_KEY, {}, denials.ApiKeyExpired),
        ([make_key(expires_at=int(NOW) - 1)], PROD_KEY, {}, denials.ApiKeyExpired),
        ([make_key(expires_at=int(NOW) + 1)], PROD_KEY, {}, KeyEnvironment.PRODUCTION),
        ([make_key(api_id="api-other")], PROD_KEY, {}, denials.ApiKeyWrongApi),
        ([make_key(organization_id="acme")], PROD_KEY, {}, denials.ApiKeyWrongApi),
        ([make_key()], PROD_KEY, {"production": ""}, denials.EnvironmentUnavailable),
        ([make_key("key-sandbox", SANDBOX_KEY, environment=SANDBOX)], SANDBOX_KEY, {"sandbox": ""}, denials.EnvironmentUnavailable),
        ([make_key(environment=0)], PROD_KEY, {}, denials.EnvironmentUnavailable),
        ([make_key(revoked=True, api_id="api-other")], PROD_KEY, {}, denials.ApiKeyRevoked),
    ],
    ids=["production", "sandbox", "unknown", "revoked", "expires-now", "expired", "not-yet-expired", "wrong-api",
         "wrong-organization", "no-production-endpoint", "no-sandbox-endpoint", "unknown-environment",
         "revoked-reported-before-wrong-api"],
)
def test_authenticate_api_key(key_records, value, api_kwargs, outcome):
    index = index_of(make_api(**api_kwargs), *key_records)
    request = make_request(PIZZA_BASE + "/menu", headers={"apikey": value})
    route = resolve_route(request, index)
    if isinstance(outcome, KeyEnvironment):
        assert identify(request, route, index, NOW).environment is outcome
    else:
        with pytest.raises(outcome):
            identify(request, route, index, NOW)


@pytest.mark.parametrize(
    "security,headers,outcome",
    [
        (None, {}, denials.CredentialMissing),
        (_BOTH, {"authorization": "Bearer tok"}, denials.TokenMalformed),
        (_OAUTH_ONLY, {"apikey": PROD_KEY}, denials.CredentialMissing),
    ],
    ids=["missing", "opaque-bearer-no-key-manager-accepts-it", "api-key-on-oauth-only-api"],
)
def test_identify_without_a_usable_credential(security, headers, outcome):
    index = index_of(make_api(security=security), make_key())
    request = make_request(PIZZA_BASE + "/menu", headers=headers)
    with pytest.raises(outcome):
        identify(request, resolve_route(request, index), index, NOW)


# --- IP and referrer restrictions ------------------------------------------------------------------


def _identity(**key_kwargs):
    index = index_of(make_api(), make_key(**key_kwargs))
    request = make_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY})
    return identify(request, resolve_route(request, index), index, NOW)


@pytest.mark.parametrize(
    "allowed_ips,peer,xff,hops,allowed",
    [
        ([], "203.0.113.7", None, 0, True),
        (["203.0.113.0/24"], "203.0.113.7", None, 0, True),
        (["203.0.113.0/24"], "198.51.100.7", None, 0, False),
        (["2001:db8::/32"], "2001:db8::7", None, 0, True),
        (["203.0.113.7"], "::ffff:203.0.113.7", None, 0, True),
        (["198.51.100.1"], "10.0.0.1", "198.51.100.1", 0, False),
        (["198.51.100.1"], "10.0.0.1", "198.51.100.1", 1, True),
        (["198.51.100.1"], "10.0.0.1", "198.51.100.1, 10.9.9.9", 1, False),
        (["not-an-ip"], "203.0.113.7", None, 0, False),
    ],
    ids=["unrestricted", "v4-cidr", "v4-outside", "v6-cidr", "mapped-peer", "xff-untrusted",
         "xff-one-hop", "xff-one-hop-rightmost", "only-broken-rules-admit-nobody"],
)
def test_ip_restriction(allowed_ips, peer, xff, hops, allowed):
    identity = _identity(allowed_ips=allowed_ips)
    headers = {"x-forwarded-for": xff} if xff else {}
    request = make_request(PIZZA_BASE + "/menu", headers=headers, peer=peer, trusted_hops=hops)
    if allowed:
        check_ip_restriction(request, identity)
    else:
        with pytest.raises(denials.IpNotAllowed):
            check_ip_restriction(request, identity)


@pytest.mark.parametrize(
    "patterns,referer,allowed",
    [
        ([], None, True),
        (["*.example.com/*"], "https://shop.example.com/cart", True),
        (["*.example.com/*"], None, False),
        (["*.example.com/*"], "https://example.com.evil.io/", False),
        (["*.example.com/*"], ["https://shop.example.com/", "https://evil.io/"], False),
        (["www.example.com/path", "*.example.org/*"], "https://a.example.org/x", True),
    ],
    ids=["unrestricted", "wildcard", "missing", "look-alike", "repeated-header", "second-pattern"],
)
def test_referrer_restriction(patterns, referer, allowed):
    identity = _identity(allowed_referrers=patterns)
    request = make_request(PIZZA_BASE + "/menu", headers={"referer": referer} if referer else {})
    if allowed:
        check_referrer_restriction(request, identity)
    else:
        with pytest.raises(denials.RefererNotAllowed):
            check_referrer_restriction(request, identity)


# --- subscription ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "records,key_kwargs,outcome",
    [
        ([make_application(), make_subscription()], {}, "sub-1"),
        ([make_application(), make_subscription(status=Subscription.BLOCKED)], {}, denials.SubscriptionInactive),
        ([make_application(), make_subscription(status=Subscription.ON_HOLD)], {}, denials.SubscriptionInactive),
        ([make_application(), make_subscription(status=Subscription.REJECTED)], {}, denials.SubscriptionInactive),
        ([make_application(), make_subscription(status=0)], {}, denials.SubscriptionInactive),
        ([make_application(), make_subscription(status=Subscription.PROD_ONLY_BLOCKED)], {}, denials.SubscriptionProductionBlocked),
        ([make_application(), make_subscription(status=Subscription.PROD_ONLY_BLOCKED)],
         {"value": SANDBOX_KEY, "environment": SANDBOX}, "sub-1"),
        ([make_application()], {}, denials.SubscriptionMissing),
        ([make_application(), make_subscription(api_id="api-other")], {}, denials.SubscriptionMissing),
        ([make_application(organization_id="acme"), make_subscription()], {}, denials.SubscriptionMissing),
        ([make_application(), make_subscription()], {"application_id": ""}, denials.ApiKeyNotAssociated),
        ([make_subscription()], {}, denials.ApiKeyNotAssociated),
    ],
    ids=["active", "blocked", "on-hold", "rejected", "unknown-status", "prod-only-blocked-production",
         "prod-only-blocked-sandbox", "no-subscription", "subscribed-elsewhere", "application-of-other-org",
         "key-not-associated", "application-deleted"],
)
def test_subscription(records, key_kwargs, outcome):
    value = key_kwargs.get("value", PROD_KEY)
    index = index_of(make_api(), make_key(**key_kwargs), *records)
    request = make_request(PIZZA_BASE + "/menu", headers={"apikey": value})
    route = resolve_route(request, index)
    identity = identify(request, route, index, NOW)
    if isinstance(outcome, str):
        assert check_subscription(route, identity, index).id == outcome
    else:
        with pytest.raises(outcome):
            check_subscription(route, identity, index)


def test_subscription_less_api_needs_none():
    index = index_of(make_api(subscription_less=True), make_key(application_id=""))
    request = make_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY})
    route = resolve_route(request, index)
    assert check_subscription(route, identify(request, route, index, NOW), index) is None

