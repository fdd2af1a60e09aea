"""An API in DRY_RUN: what ENFORCE denies is decided, counted as would_deny, and allowed
with the usual upstream hygiene; the would-be reason goes to the access log metadata."""

from __future__ import annotations

from google.rpc import code_pb2
from portcullis.admin.v1 import admin_pb2

from authz_server.check_servicer import AuthorizationService
from authz_server.explain.handler import ExplainHandler
from authz_server.index.store import PolicyStore
from authz_server.metrics.recorder import recorder
from portcullis.admin.v1 import decisions_pb2

from .checks import check_request
from .factories import PIZZA_BASE, PROD_KEY, index_of, make_api, make_key, pizza_world


def _service(enforcement: int, records=None) -> AuthorizationService:
    records = records or pizza_world()
    api = make_api()
    api.enforcement = enforcement
    records = [api if type(r) is admin_pb2.Api else r for r in records]
    store = PolicyStore()
    store.install_snapshot(index_of(*records))
    return AuthorizationService(store)


def test_enforce_denies_and_dry_run_allows_the_same_call_with_hygiene() -> None:
    request = check_request(PIZZA_BASE + "/menu?apikey=pck_unknown", headers={"x-portcullis-environment": "sandbox"})
    enforced = _service(admin_pb2.ENFORCE).check(request)
    assert enforced.status.code != code_pb2.OK
    assert enforced.dynamic_metadata.fields["reason"].string_value == "api_key_invalid"
    recorder.reset()
    shadowed = _service(admin_pb2.DRY_RUN).check(request)
    assert shadowed.status.code == code_pb2.OK
    metadata = shadowed.dynamic_metadata.fields
    assert (metadata["reason"].string_value, metadata["outcome"].string_value) == ("api_key_invalid", "would_deny")
    ok = shadowed.ok_response
    assert "apikey" in ok.query_parameters_to_remove and "apikey" in ok.headers_to_remove
    assert {h.header.key: h.header.value for h in ok.headers} == {"x-portcullis-environment": "production"}
    assert recorder.decisions == {("would_deny", "api_key_invalid", "api-pizza", "api_key"): 1}


def test_dry_run_leaves_allowed_calls_and_internal_errors_as_they_are(monkeypatch) -> None:
    from authz_server.index.subscriptions import SubscriptionTable

    service = _service(admin_pb2.DRY_RUN)
    allowed = service.check(check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}))
    assert allowed.status.code == code_pb2.OK and "outcome" not in allowed.dynamic_metadata.fields
    # In the index, which the subscription stage reads: it holds on the compiled pipeline too.
    monkeypatch.setattr(SubscriptionTable, "for_application", lambda *a, **k: (_ for _ in ()).throw(RuntimeError()))
    failed = service.check(check_request(PIZZA_BASE + "/menu", headers={"apikey": PROD_KEY}))
    assert failed.status.code != code_pb2.OK   # fail closed, even in DRY_RUN


def test_explain_says_would_deny_for_a_dry_run_api() -> None:
    records = [make_key(revoked=True) if type(r).__name__ == "ApiKeyRecord" and r.id == "key-prod" else r
               for r in pizza_world()]
    service = _service(admin_pb2.DRY_RUN, records)
    trace = ExplainHandler(service, lambda: "t", "test").explain(decisions_pb2.ExplainDecisionRequest(
        method="GET", path=PIZZA_BASE + "/menu", headers=[decisions_pb2.RequestHeader(name="apikey", value=PROD_KEY)]))
    assert (trace.outcome, trace.reason, trace.api.enforcement) == ("would_deny", "api_key_revoked", "DRY_RUN")
