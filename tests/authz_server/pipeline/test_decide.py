"""decide(): the phase order end to end on an index, and fail-closed behaviour."""

import importlib
import logging

import pytest

from authz_server import denials
from authz_server.denials import ALL_DENIALS, Denial
from authz_server.pipeline import Allow, decide

from ..factories import (
    NOW,
    PIZZA_BASE,
    PROD_KEY,
    SANDBOX_KEY,
    Api,
    index_of,
    make_api,
    make_key,
    make_request,
    pizza_world,
)

decide_module = importlib.import_module("authz_server.pipeline.decide")


def _decide(target="/menu", headers=None, records=None, **request_kwargs):
    index = index_of(*(records if records is not None else pizza_world()))
    return decide(make_request(PIZZA_BASE + target, headers=headers, **request_kwargs), index, NOW)


def test_production_key_is_allowed_to_production():
    decision = _decide(headers={"apikey": PROD_KEY})
    assert isinstance(decision, Allow)
    assert (decision.environment.value, decision.api_key_id, decision.application_id) == ("production", "key-prod", "app-1")
    assert decision.subscription.id == "sub-1"


def test_sandbox_key_is_routed_to_sandbox():
    decision = _decide(target="/menu?apikey=" + SANDBOX_KEY)
    assert isinstance(decision, Allow) and decision.environment.value == "sandbox"


def test_open_resource_needs_no_credential_and_goes_to_production():
    decision = _decide(target="/open")
    assert isinstance(decision, Allow)
    assert decision.environment.value == "production" and decision.identity is None


def test_policy_not_ready_before_a_snapshot():
    decision = decide(make_request(), None, NOW)
    assert isinstance(decision, denials.PolicyNotReady) and decision.http_status == 503


def test_missing_key_carries_the_api_key_challenge():
    decision = _decide()
    assert isinstance(decision, denials.CredentialMissing)
    assert decision.challenges == ('APIKey realm="portcullis", header="apikey"',)
    assert decision.api_id == "api-pizza"


def test_forbidden_denials_carry_no_challenge_but_name_the_key():
    records = pizza_world()
    records[4] = make_key(allowed_ips=["10.0.0.0/8"])
    decision = _decide(headers={"apikey": PROD_KEY}, records=records)
    assert isinstance(decision, denials.IpNotAllowed)
    assert decision.challenges == () and decision.api_key_id == "key-prod"


def test_revoked_key_denial_names_the_key():
    records = pizza_world()
    records[4] = make_key(revoked=True)
    decision = _decide(headers={"apikey": PROD_KEY}, records=records)
    assert isinstance(decision, denials.ApiKeyRevoked) and decision.api_key_id == "key-prod"


@pytest.mark.parametrize(
    "state,expected",
    [(Api.CREATED, "api_not_deployed"), (Api.PUBLISHED, "allowed"), (Api.DEPRECATED, "allowed"),
     (Api.BLOCKED, "api_blocked"), (Api.RETIRED, "api_not_deployed")],
    ids=["created", "published", "deprecated", "blocked", "retired"],
)
def test_each_lifecycle_state(state, expected):
    records = pizza_world()
    records[1] = make_api(state=state)
    assert _decide(headers={"apikey": PROD_KEY}, records=records).code == expected


def test_ip_is_checked_before_subscription():
    records = [r for r in pizza_world() if type(r).__name__ != "Subscription"]
    records[3] = make_key(allowed_ips=["10.0.0.0/8"])
    assert _decide(headers={"apikey": PROD_KEY}, records=records).code == "ip_not_allowed"


def test_unexpected_exception_fails_closed(monkeypatch, caplog):
    def explode(*args):
        raise KeyError("boom")

    monkeypatch.setattr(decide_module, "check_subscription", explode)
    with caplog.at_level(logging.ERROR, logger="authz_server.pipeline.decide"):
        decision = _decide(headers={"apikey": PROD_KEY})
    assert isinstance(decision, denials.InternalError) and decision.http_status == 500
    assert decision.api_id == "api-pizza"
    assert "KeyError" in caplog.text and PROD_KEY not in caplog.text


def test_reason_code_table_matches_the_brief():
    table = {cls.code: cls.http_status for cls in ALL_DENIALS}
    assert table == {
        "api_not_found": 404, "api_not_deployed": 404, "resource_not_found": 404, "api_blocked": 403,
        "credential_missing": 401, "credential_ambiguous": 401, "credential_unsupported": 401,
        "api_key_invalid": 401, "api_key_revoked": 401, "api_key_expired": 401, "api_key_wrong_api": 401,
        "environment_unavailable": 403, "ip_not_allowed": 403, "referer_not_allowed": 403,
        "api_key_not_associated": 403, "subscription_missing": 403, "subscription_inactive": 403,
        "subscription_production_blocked": 403, "policy_not_ready": 503, "bad_request": 400, "internal_error": 500,
        "token_malformed": 401, "token_issuer_unknown": 401, "key_manager_disabled": 401,
        "key_manager_not_allowed": 403, "token_algorithm_not_allowed": 401, "token_key_unknown": 401,
        "token_signature_invalid": 401, "token_expired": 401, "token_not_yet_valid": 401,
        "token_audience_invalid": 401, "token_claims_invalid": 401, "token_revoked": 401, "token_inactive": 401,
        "token_client_unknown": 401, "key_manager_unavailable": 503, "insufficient_scope": 403,
    }
    assert len(table) == len(ALL_DENIALS)
    assert all(issubclass(cls, Denial) and cls.default_message for cls in ALL_DENIALS)


def test_decide_never_imports_grpc():
    import authz_server.pipeline as pipeline_package
    import pathlib

    for module in pathlib.Path(pipeline_package.__file__).parent.glob("*.py"):
        source = module.read_text()
        assert "import grpc" not in source and "from grpc" not in source, module.name
