"""The lifecycle table of the brief, every pair of states."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import update

from admin_api.db import models
from admin_api.errors import FailedPrecondition, InvalidArgument
from admin_api.services import apis
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.conftest import ADMIN, create_api

pytestmark = pytest.mark.both_databases

State = admin_pb2.Api.LifecycleState
STATES = ["CREATED", "PUBLISHED", "DEPRECATED", "RETIRED", "BLOCKED"]
ALLOWED = {
    ("CREATED", "PUBLISHED"),
    ("PUBLISHED", "DEPRECATED"), ("PUBLISHED", "BLOCKED"), ("PUBLISHED", "RETIRED"),
    ("DEPRECATED", "PUBLISHED"), ("DEPRECATED", "RETIRED"), ("DEPRECATED", "BLOCKED"),
    ("BLOCKED", "PUBLISHED"), ("BLOCKED", "DEPRECATED"), ("BLOCKED", "RETIRED"),
}


def _api_in_state(store, state: str) -> admin_pb2.Api:
    api = create_api(store)
    with store.write() as writer:  # set the starting state directly: the table is under test
        writer.session.execute(update(models.Api).where(models.Api.id == api.id).values(lifecycle_state=state))
    return api


def _change(store, api_id: str, target: int) -> admin_pb2.Api:
    return apis.change_api_lifecycle(store, admin_pb2.ChangeApiLifecycleRequest(id=api_id, target_state=target), ADMIN)


@pytest.mark.parametrize(("source", "target"), [
    pytest.param(s, t, id=f"{s}->{t}") for s, t in itertools.product(STATES, STATES)])
def test_transition(store, source, target):
    api = _api_in_state(store, source)
    if (source, target) in ALLOWED:
        assert _change(store, api.id, State.Value(target)).lifecycle_state == State.Value(target)
        return
    with pytest.raises(FailedPrecondition) as caught:
        _change(store, api.id, State.Value(target))
    assert "allowed targets" in caught.value.message
    assert ("already" in caught.value.message) == (source == target)
    if source == "RETIRED":
        assert "final" in caught.value.message


def test_error_names_the_allowed_targets(store):
    api = create_api(store)
    with pytest.raises(FailedPrecondition, match="CREATED and cannot go to RETIRED; allowed targets: PUBLISHED"):
        _change(store, api.id, State.RETIRED)


def test_target_state_is_required(store):
    api = create_api(store)
    with pytest.raises(InvalidArgument) as caught:
        _change(store, api.id, State.LIFECYCLE_STATE_UNSPECIFIED)
    assert caught.value.field == "target_state"
