"""Decision explain runs the production decision: over the whole reason-code table its
outcome, reason and status equal what Check answers for the same request on the same
index, and its answer never carries the credential that was presented."""

from __future__ import annotations

import time
from typing import Callable

import pytest
from google.rpc import code_pb2
from portcullis.admin.v1 import admin_pb2, decisions_pb2
from portcullis.sync.v1 import sync_pb2

from authz_server import denials
from authz_server.check_servicer import AuthorizationService
from authz_server.explain.handler import ExplainHandler
from authz_server.index.store import PolicyStore

from ..backend_jwt_kit import jwt_api
from ..checks import check_request
from ..factories import PIZZA_BASE, PROD_KEY, SANDBOX_KEY, index_of, make_api, make_key, make_subscription, pizza_world
from ..oauth import (
    EC_KEY, RSA_OTHER, claims, make_key_manager, mint, oauth_api, oauth_world, public_pem,
)

Sub = admin_pb2.Subscription
PEER = "203.0.113.7"


def _replace(records: list, kind: type, record) -> list:
    return [record if type(r) is kind and getattr(r, "id", None) == record.id else r for r in records]


def _keys(**fields) -> list:
    return _replace(pizza_world(), sync_pb2.ApiKeyRecord, make_key(**fields))


def _api(**fields) -> list:
    return _replace(pizza_world(), admin_pb2.Api, make_api(**fields))


def _subscription(status: int) -> list:
    return _replace(pizza_world(), admin_pb2.Subscription, make_subscription(status=status))


def _km(**fields) -> list:
    return oauth_world(make_key_manager(certificate_pem=public_pem(_RSA).decode(), **fields))


from ..oauth import RSA_KEY as _RSA  # noqa: E402  (the certificate key manager's key)

KEY = {"apikey": PROD_KEY}


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# (case, records (None: no snapshot yet), path under the API, headers)
CASES: list[tuple[str, list | None, str, dict[str, str]]] = [
    ("allowed_api_key", pizza_world(), "/menu", KEY),
    ("allowed_open", pizza_world(), "/open", {}),
    ("allowed_token", _km(), "/menu", {}),   # the token is minted per run (real clock)
    ("policy_not_ready", None, "/menu", KEY),
    ("bad_request", pizza_world(), "/echo/a%2Fb", KEY),
    ("api_not_found", pizza_world(), "@/nowhere/menu", KEY),
    ("api_not_deployed", _api(state=admin_pb2.Api.CREATED), "/menu", KEY),
    ("api_blocked", _api(state=admin_pb2.Api.BLOCKED), "/menu", KEY),
    ("resource_not_found", pizza_world(), "/nothing-here", KEY),
    ("credential_missing", pizza_world(), "/menu", {}),
    ("credential_ambiguous", pizza_world(), "/menu?apikey=" + SANDBOX_KEY, KEY),
    ("api_key_invalid", pizza_world(), "/menu", {"apikey": "pck_no-such-key"}),
    ("api_key_revoked", _keys(revoked=True), "/menu", KEY),
    ("api_key_expired", _keys(expires_at=1_000), "/menu", KEY),
    ("api_key_wrong_api", _keys(api_id="api-other"), "/menu", KEY),
    ("environment_unavailable", _api(sandbox=""), "/menu", {"apikey": SANDBOX_KEY}),
    ("ip_not_allowed", _keys(allowed_ips=["10.0.0.0/8"]), "/menu", KEY),
    ("referer_not_allowed", _keys(allowed_referrers=["https://shop.example/*"]), "/menu", KEY),
    ("api_key_not_associated", _keys(application_id=""), "/menu", KEY),
    ("subscription_missing", [r for r in pizza_world() if type(r) is not admin_pb2.Subscription], "/menu", KEY),
    ("subscription_inactive", _subscription(Sub.BLOCKED), "/menu", KEY),
    ("subscription_production_blocked", _subscription(Sub.PROD_ONLY_BLOCKED), "/menu", KEY),
    ("credential_unsupported", _km(), "/menu", _bearer("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d")),
    ("token_malformed", _km(), "/menu", _bearer("not-a-jwt")),
    ("token_issuer_unknown", _km(), "/menu", {}),
    ("key_manager_disabled", _km(enabled=False), "/menu", {}),
    ("key_manager_not_allowed", [oauth_api(allowed=("Other",)) if type(r) is admin_pb2.Api else r for r in _km()],
     "/menu", {}),
    ("token_algorithm_not_allowed", _km(algorithms=("RS256",)), "/menu", {}),
    ("token_signature_invalid", _km(), "/menu", {}),
    ("token_expired", _km(), "/menu", {}),
    ("token_not_yet_valid", _km(), "/menu", {}),
    ("token_audience_invalid", _km(audience="api://pizza"), "/menu", {}),
    ("token_claims_invalid", _km(), "/menu", {}),
    ("token_revoked", _km() + [sync_pb2.RevokedTokenRecord(id="jti-1", organization_id="default",
                                                            key_manager_id="km-idp",
                                                            expires_at_unix=int(time.time()) + 3600)], "/menu", {}),
    ("token_client_unknown", _km(), "/menu", {}),
    ("insufficient_scope", _km(), "/orders", {}),
    ("key_manager_unavailable", oauth_world(make_key_manager(jwks_uri="http://127.0.0.1:9/jwks")), "/menu", {}),
    ("backend_jwt_unavailable", _replace(pizza_world(), admin_pb2.Api, jwt_api()), "/menu", KEY),
]

# Minted per run: PyJWT checks them against the real clock.
TOKENS: dict[str, Callable[[], str]] = {
    "allowed_token": lambda: mint(),
    "token_issuer_unknown": lambda: mint(claims(iss="https://elsewhere.example")),
    "key_manager_disabled": lambda: mint(),
    "key_manager_not_allowed": lambda: mint(),
    "token_algorithm_not_allowed": lambda: mint(key=EC_KEY, alg="ES256", kid="ec-1"),
    "token_signature_invalid": lambda: mint(key=RSA_OTHER),
    "token_expired": lambda: mint(claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200,
                                         nbf=int(time.time()) - 7200)),
    "token_not_yet_valid": lambda: mint(claims(nbf=int(time.time()) + 3600)),
    "token_audience_invalid": lambda: mint(),
    "token_claims_invalid": lambda: mint(claims(exp="tomorrow")),
    "token_revoked": lambda: mint(),
    "token_client_unknown": lambda: mint(claims(azp="nobody", client_id=None)),
    "insufficient_scope": lambda: mint(),
    "key_manager_unavailable": lambda: mint(),
}
# Cases that need the fake IdP (tests/fake_idp.py, the `provider` fixture): a JWKS to
# look a kid up in, an introspection endpoint. (case, records from the IdP, token).
IDP_CASES: list[tuple[str, Callable, Callable]] = [
    ("token_key_unknown", lambda idp: oauth_world(make_key_manager(jwks_uri=idp.jwks_uri)),
     lambda idp: mint(kid="rsa-unknown")),
    ("token_inactive", lambda idp: oauth_world(make_key_manager(
        jwks_uri=idp.jwks_uri, accepts_reference=True, introspection_endpoint=idp.introspection_endpoint,
        client_id="portcullis", client_secret="s3cret")), lambda idp: _inactive(idp, "opaque-explained-1")),
]
# Not reachable from one request on an index: internal_error (its own test below), and
# the throttling codes (the throttle stage's tests: explain neither checks nor counts
# throttling counters).
NOT_IN_TABLE = {"internal_error", "subscription_throttled", "application_throttled", "api_throttled",
                "burst_throttled", "throttling_unavailable"}


def _inactive(idp, token: str) -> str:
    idp.answers[token] = {"active": False}
    return token


def _service(records: list | None) -> AuthorizationService:
    from ..oauth import services

    store = PolicyStore()
    if records is not None:
        store.install_snapshot(index_of(*records))
    return AuthorizationService(store, tokens=services(timeout=0.5))


def _explain(service: AuthorizationService, path: str, headers: dict[str, str]) -> decisions_pb2.DecisionTrace:
    request = decisions_pb2.ExplainDecisionRequest(
        method="GET", path=path, client_address=PEER,
        headers=[decisions_pb2.RequestHeader(name=name, value=value) for name, value in headers.items()])
    return ExplainHandler(service, lambda: "pcs_sync", "test").explain(request)


def _check(service: AuthorizationService, path: str, headers: dict[str, str]) -> tuple[str, str, int]:
    response = service.check(check_request(path, headers=headers, peer=PEER))
    reason = response.dynamic_metadata.fields["reason"].string_value
    if response.status.code == code_pb2.OK:
        return "allow", reason, 200
    return "deny", reason, response.denied_response.status.code


@pytest.mark.parametrize("case,records,subpath,headers", CASES, ids=[case[0] for case in CASES])
def test_explain_answers_what_check_answers(case, records, subpath, headers) -> None:
    if case in TOKENS:
        headers = {**headers, **_bearer(TOKENS[case]())}
    path = subpath[1:] if subpath.startswith("@") else PIZZA_BASE + subpath
    service = _service(records)
    checked = _check(service, path, headers)
    explained = _explain(service, path, headers)
    assert (explained.outcome, explained.reason, explained.http_status) == checked
    expected = "allowed" if case.startswith("allowed") else case
    assert explained.reason == expected
    assert explained.revision == (1 if records is not None else 0)
    text = str(explained)
    for value in headers.values():
        secret = value.removeprefix("Bearer ")
        assert secret not in text, "explain must never answer the presented credential"
    failed = [check for check in explained.checks if check.outcome == "failed"]
    assert len(failed) == (0 if expected == "allowed" else 1)


@pytest.mark.parametrize("case,records,token", IDP_CASES, ids=[case[0] for case in IDP_CASES])
def test_explain_answers_what_check_answers_with_a_key_manager_to_ask(provider, case, records, token) -> None:
    from ..oauth import services

    headers = _bearer(token(provider))
    store = PolicyStore()
    store.install_snapshot(index_of(*records(provider)))
    bundle = services(timeout=2.0)
    service = AuthorizationService(store, tokens=bundle)
    path = PIZZA_BASE + "/menu"
    try:
        checked = _check(service, path, headers)
        explained = _explain(service, path, headers)
    finally:
        bundle.stop()  # its HTTP connections to the IdP
    assert (explained.outcome, explained.reason, explained.http_status) == checked
    assert explained.reason == case
    assert headers["authorization"].removeprefix("Bearer ") not in str(explained)


def test_the_table_covers_every_reason_code() -> None:
    codes = {vars(cls)["code"] for cls in _subclasses(denials.Denial) if "code" in vars(cls)}
    covered = {case[0] for case in CASES} | {case[0] for case in IDP_CASES}
    missing = codes - covered - NOT_IN_TABLE
    assert not missing, f"reason codes without an explain case: {sorted(missing)}"


def test_an_internal_error_is_explained_as_check_answers_it(monkeypatch) -> None:
    from authz_server.index.subscriptions import SubscriptionTable

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    # In the index, which the subscription stage reads: it holds on the compiled pipeline too.
    monkeypatch.setattr(SubscriptionTable, "for_application", broken)
    service = _service(pizza_world())
    assert _check(service, PIZZA_BASE + "/menu", KEY) == ("deny", "internal_error", 500)
    explained = _explain(service, PIZZA_BASE + "/menu", KEY)
    assert (explained.outcome, explained.reason, explained.http_status) == ("deny", "internal_error", 500)


def test_the_trace_names_each_stage_in_order_for_an_allowed_key() -> None:
    explained = _explain(_service(pizza_world()), PIZZA_BASE + "/menu", KEY)
    outcomes = {check.name: check.outcome for check in explained.checks}
    assert [check.name for check in explained.checks][:6] == ["policy", "request", "route", "lifecycle", "resource",
                                                              "credential"]
    assert outcomes["revocation"] == outcomes["bound_api"] == outcomes["subscription"] == "passed"
    assert outcomes["ip"] == outcomes["referrer"] == outcomes["scope"] == "skipped"
    assert explained.api.id == "api-pizza" and explained.resource == "GET /menu"
    assert (explained.credential.kind, explained.credential.api_key_id) == ("api_key", "key-prod")
    assert explained.subscription_id == "sub-1"


def test_a_denial_marks_the_failing_check_and_what_was_not_reached() -> None:
    explained = _explain(_service(_keys(allowed_ips=["10.0.0.0/8"])), PIZZA_BASE + "/menu", KEY)
    outcomes = {check.name: check.outcome for check in explained.checks}
    assert outcomes["bound_api"] == "passed" and outcomes["ip"] == "failed"
    assert outcomes["subscription"] == outcomes["scope"] == "not_reached"


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)
