"""A decision and how far it got -> the stage trace decision explain answers.

The outcome and reason are the production decision's own (`decide()` ran, on the index
in force). Which checks passed is read from where it stopped: the stages run in the fixed
order below, each check fails with its own reason codes, so every check before the
failing one passed and every one after was not reached. Values shown are ids and names
only: never the key, token or secret that was presented.
"""

from __future__ import annotations

from authz_server.context import Allow, CredentialKind, Identity
from authz_server.denials import Denial
from authz_server.index.policy_index import PolicyIndex
from authz_server.pipeline.decide import Trace
from portcullis.admin.v1 import decisions_pb2

PASSED, FAILED, SKIPPED, NOT_REACHED = "passed", "failed", "skipped", "not_reached"

# (check, the reason codes with which it fails), in the order decide() runs them.
_ROUTE = (
    ("policy", {"policy_not_ready"}),
    ("request", {"bad_request"}),
    ("route", {"api_not_found"}),
    ("lifecycle", {"api_not_deployed", "api_blocked"}),
    ("resource", {"resource_not_found"}),
    ("credential", {"credential_missing", "credential_ambiguous", "credential_unsupported"}),
)
_API_KEY = (
    ("api_key", {"api_key_invalid"}),
    ("revocation", {"api_key_revoked"}),
    ("expiry", {"api_key_expired"}),
    ("bound_api", {"api_key_wrong_api"}),
    ("environment", {"environment_unavailable"}),
)
_TOKEN = (
    ("token_format", {"token_malformed"}),
    ("key_manager", {"token_issuer_unknown", "key_manager_disabled", "key_manager_not_allowed",
                     "key_manager_unavailable"}),
    ("signature", {"token_algorithm_not_allowed", "token_key_unknown", "token_signature_invalid", "token_inactive"}),
    ("claims", {"token_expired", "token_not_yet_valid", "token_audience_invalid", "token_claims_invalid"}),
    ("revocation", {"token_revoked"}),
    ("client", {"token_client_unknown"}),
    ("environment", {"environment_unavailable"}),
)
_AFTER = (
    ("ip", {"ip_not_allowed"}),
    ("referrer", {"referer_not_allowed"}),
    ("subscription", {"api_key_not_associated", "subscription_missing", "subscription_inactive",
                      "subscription_production_blocked"}),
    ("scope", {"insufficient_scope"}),
    ("throttling", {"subscription_throttled", "application_throttled", "api_throttled", "burst_throttled",
                    "throttling_unavailable"}),
    ("backend_jwt", {"backend_jwt_unavailable"}),
)
_ANYWHERE = {"internal_error"}


def build(decision: Allow | Denial, trace: Trace, index: PolicyIndex | None, *, replica: str,
          dry_run: bool = False) -> decisions_pb2.DecisionTrace:
    answer = decisions_pb2.DecisionTrace(
        reason=decision.code, revision=index.revision if index is not None else 0, replica=replica)
    api = decision.route.api if isinstance(decision, Allow) else trace.api
    if api is None and isinstance(decision, Denial) and decision.api_id and index is not None:
        api = index.apis.get(decision.api_id)
    if isinstance(decision, Allow):
        answer.outcome, answer.http_status, answer.message = "allow", 200, "The call is allowed."
        answer.resource = f"{decision.route.resource.method} {decision.route.resource.template}"
        answer.backend_jwt = bool(decision.backend_jwt)
        if decision.subscription is not None:
            answer.subscription_id = decision.subscription.id
    else:
        answer.outcome = "would_deny" if dry_run else "deny"
        answer.http_status, answer.message = decision.http_status, decision.message
    if api is not None:
        answer.api.CopyFrom(decisions_pb2.ExplainedApi(
            id=api.id, name=api.name, version=api.version, organization_id=api.organization_id,
            lifecycle_state=api.lifecycle.value, enforcement="DRY_RUN" if getattr(api, "dry_run", False) else "ENFORCE"))
    identity = decision.identity if isinstance(decision, Allow) else trace.identity
    _credential(answer, trace, identity, decision, index)
    answer.checks.extend(_checks(decision, trace, identity, api))
    return answer


def _credential(answer: decisions_pb2.DecisionTrace, trace: Trace, identity: Identity | None,
                decision: Allow | Denial, index: PolicyIndex | None) -> None:
    credential = answer.credential
    credential.kind = decision.credential
    credential.api_key_id = decision.api_key_id
    if identity is None:
        return
    credential.application_id = identity.application_id or ""
    credential.environment = identity.environment.value if identity.environment is not None else ""
    if identity.kind is not CredentialKind.API_KEY:
        credential.key_manager_id = identity.key_manager_id
        key_manager = index.key_managers.get(identity.key_manager_id) if index is not None else None
        credential.key_manager_name = key_manager.name if key_manager is not None else ""
        credential.consumer_key = identity.consumer_key
        credential.scopes.extend(sorted(identity.scopes))


def _checks(decision: Allow | Denial, trace: Trace, identity: Identity | None, api) -> list[decisions_pb2.StageCheck]:
    code = decision.code
    open_resource = isinstance(decision, Allow) and decision.identity is None
    if trace.credential == "api_key":
        middle = _API_KEY
    elif trace.credential == "oauth2":
        middle = _TOKEN
    else:
        middle = ()
    table = _ROUTE + middle + _AFTER
    checks: list[decisions_pb2.StageCheck] = []
    failed_at = None
    if isinstance(decision, Denial):
        failed_at = next((index for index, (_name, codes) in enumerate(table) if code in codes), None)
    for position, (name, _codes) in enumerate(table):
        if isinstance(decision, Allow):
            outcome = PASSED
        elif failed_at is None:   # internal_error: where it happened is not known
            outcome = NOT_REACHED
        else:
            outcome = PASSED if position < failed_at else FAILED if position == failed_at else NOT_REACHED
        detail = ""
        if outcome == PASSED:
            outcome, detail = _passed(name, decision, identity, api, open_resource)
        elif outcome == FAILED:
            detail = decision.message
        checks.append(decisions_pb2.StageCheck(name=name, outcome=outcome, detail=detail))
    if code in _ANYWHERE:
        checks.append(decisions_pb2.StageCheck(name="internal", outcome=FAILED, detail=decision.message))
    return checks


def _passed(name: str, decision: Allow | Denial, identity: Identity | None, api, open_resource: bool) -> tuple[str, str]:
    """A check before the failure (or of an allow): skipped when it does not apply to this call."""
    if open_resource and name not in ("policy", "request", "route", "lifecycle", "resource", "backend_jwt",
                                      "throttling"):
        return SKIPPED, "open resource: no credential needed"
    key = identity.api_key if identity is not None else None
    if name == "ip" and (key is None or key.allowed_ips is None):
        return SKIPPED, "no IP restriction"
    if name == "referrer" and (key is None or key.allowed_referrers is None):
        return SKIPPED, "no referrer restriction"
    if name == "expiry" and key is not None and key.expires_at is None:
        return PASSED, "no expiry"
    if name == "subscription" and api is not None and api.subscription_less:
        return SKIPPED, "subscription-less API"
    if name == "scope":
        if identity is None or not identity.is_token:
            return SKIPPED, "API keys carry no scopes"
        if isinstance(decision, Allow) and not decision.route.resource.scopes:
            return SKIPPED, "the resource needs no scope"
    if name == "throttling":
        return SKIPPED, "explain never consumes quota: throttling is not evaluated"
    if name == "backend_jwt":
        if isinstance(decision, Allow):
            return (PASSED, "signed (the value is never shown)") if decision.backend_jwt else (SKIPPED, "none for this API")
        return NOT_REACHED, ""
    return PASSED, ""
