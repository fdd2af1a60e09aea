"""The explain service: it answers the replica's trace for an API of the caller's
organization, NOT_FOUND for another's, and proper errors when no replica answers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from portcullis.admin.v1 import decisions_pb2

from admin_api.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from admin_api.replicas import ReplicaExplainer
from admin_api.services.decisions import explain_decision

from ..conftest import ADMIN

REQUEST = decisions_pb2.ExplainDecisionRequest(method="GET", path="/pizzashack/1.0.0/menu")


class _Answers:
    def __init__(self, trace: decisions_pb2.DecisionTrace) -> None:
        self.trace, self.asked = trace, []

    def explain(self, request):
        self.asked.append(request)
        return self.trace


def _with(store, explainer):
    store.config = replace(store.config, explainer=explainer)
    return store


def test_the_trace_of_an_api_of_the_callers_organization_is_answered(store) -> None:
    trace = decisions_pb2.DecisionTrace(outcome="deny", reason="credential_missing",
                                        api=decisions_pb2.ExplainedApi(id="a1", organization_id="default"))
    answers = _Answers(trace)
    assert explain_decision(_with(store, answers), REQUEST, ADMIN) == trace
    assert answers.asked == [REQUEST]


def test_an_api_of_another_organization_is_not_found(store) -> None:
    trace = decisions_pb2.DecisionTrace(outcome="allow", reason="allowed",
                                        api=decisions_pb2.ExplainedApi(id="a2", organization_id="acme"))
    with pytest.raises(NotFound):
        explain_decision(_with(store, _Answers(trace)), REQUEST, ADMIN)


def test_a_request_without_a_path_is_invalid(store) -> None:
    with pytest.raises(InvalidArgument):
        explain_decision(_with(store, _Answers(decisions_pb2.DecisionTrace())),
                         decisions_pb2.ExplainDecisionRequest(method="GET", path="menu"), ADMIN)


def test_no_replica_answering_is_unavailable(tmp_path: Path) -> None:
    token = tmp_path / "sync-token"
    token.write_text("pcs_x")
    explainer = ReplicaExplainer("127.0.0.1:1", token)
    try:
        with pytest.raises(Unavailable):
            explainer.explain(REQUEST)
    finally:
        explainer.close()
    with pytest.raises(FailedPrecondition):
        ReplicaExplainer("127.0.0.1:1", tmp_path / "missing").explain(REQUEST)
