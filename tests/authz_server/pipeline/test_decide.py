"""decide(): the phase order end to end on an index, and fail-closed behaviour."""

import subprocess
import sys
import logging

import pytest

from authz_server import denials
from authz_server.index.subscriptions import SubscriptionTable
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

    # In the index's lookup, which the subscription stage calls: a patch of a function
    # of the pipeline itself would not hold on its compiled build (authz_server/compiled).
    monkeypatch.setattr(SubscriptionTable, "for_application", explode)
    with caplog.at_level(logging.ERROR, logger="authz_server.pipeline.decide"):
        decision = _decide(headers={"apikey": PROD_KEY})
    assert isinstance(decision, denials.InternalError) and decision.http_status == 500
    assert decision.api_id == "api-pizza"
    assert "KeyError" in caplog.text and PROD_KEY not in caplog.text


def test_decide_never_imports_grpc():
    # In a fresh interpreter, so that nothing this test process imported counts: the
    # decision and everything it pulls in, directly or not, stay free of grpc and Envoy's
    # protobufs (the servicer converts at the edge).
    probe = (
        "import sys, authz_server.pipeline, authz_server.pipeline.decide\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'envoy', 'sqlalchemy'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == []
