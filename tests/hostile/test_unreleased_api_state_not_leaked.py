"""A subscriber cannot learn that an unreleased API exists, nor its state (issue 18, item 6):
`GET /v1/apis/{id}` answers 404 for a CREATED, BLOCKED or RETIRED API, and so do
`POST /v1/subscriptions` and `POST /v1/apis/{id}/api-keys` naming it (they answered 409
"API ... is CREATED", which told the subscriber the id and the state), and `GET
/v1/apis/{id}/definition` of such an API, though it has a document. Over gRPC and REST
alike, with a real subscriber's token; the answer is word for word the one for an id that
does not exist."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from admin_api.services import api_definitions, apis
from portcullis.admin.v1 import admin_pb2
from tests.admin_api.roles_world import ROOT, World, build_world, stop_world

TRANSPORTS = ("grpc", "rest")
MISSING = "0" * 32


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built, server = build_world(tmp_path_factory.mktemp("unreleased"))
    yield built
    stop_world(built, server)


def _api_in(world: World, state: int) -> str:
    api = world.api(published=state != admin_pb2.Api.CREATED)
    if state not in (admin_pb2.Api.CREATED, admin_pb2.Api.PUBLISHED):
        apis.change_api_lifecycle(world.store, admin_pb2.ChangeApiLifecycleRequest(id=api.id, target_state=state),
                                  ROOT)
    return api.id


def _subscribe(world: World, transport: str, api_id: str, application_id: str):
    return world.call(transport, "SubscriptionService/CreateSubscription",
                      admin_pb2.CreateSubscriptionRequest(application_id=application_id, api_id=api_id),
                      world.token_of("subscriber"))


def _generate_key(world: World, transport: str, api_id: str, _application_id: str):
    return world.call(transport, "ApiKeyService/GenerateApiKey",
                      admin_pb2.GenerateApiKeyRequest(api_id=api_id, name="probe"), world.token_of("subscriber"))


def _get(world: World, transport: str, api_id: str, _application_id: str):
    return world.call(transport, "ApiService/GetApi", admin_pb2.GetApiRequest(id=api_id),
                      world.token_of("subscriber"))


def _get_definition(world: World, transport: str, api_id: str, _application_id: str):
    if api_id != MISSING:   # the hidden API has a document: the answer must not tell
        api_definitions.set_api_definition(world.store, admin_pb2.SetApiDefinitionRequest(
            id=api_id, document="openapi: 3.0.3\ninfo: {title: T, version: '1'}\npaths: {}\n"), ROOT)
    return world.call(transport, "ApiService/GetApiDefinition", admin_pb2.GetApiDefinitionRequest(id=api_id),
                      world.token_of("subscriber"))


CALLS = {"create-subscription": _subscribe, "generate-api-key": _generate_key, "get-api": _get,
         "get-api-definition": _get_definition}
HIDDEN = {"created": admin_pb2.Api.CREATED, "blocked": admin_pb2.Api.BLOCKED, "retired": admin_pb2.Api.RETIRED}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("state", HIDDEN.keys())
@pytest.mark.parametrize("call", CALLS.keys())
def test_an_api_the_subscriber_may_not_see_is_not_found_everywhere(world: World, transport, state, call):
    api_id = _api_in(world, HIDDEN[state])
    application_id = world.application("sam").id
    hidden = CALLS[call](world, transport, api_id, application_id)
    missing = CALLS[call](world, transport, MISSING, application_id)
    assert hidden.status == "NOT_FOUND", hidden
    assert missing.status == "NOT_FOUND", missing
    # The same words but for the id: nothing says the API exists or what state it is in.
    assert str(hidden.body).replace(api_id, "<id>") == str(missing.body).replace(MISSING, "<id>")
    assert admin_pb2.Api.LifecycleState.Name(HIDDEN[state]) not in str(hidden.body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_admin_still_learns_why_a_created_api_takes_no_subscription(world: World, transport):
    """The control row: who may read the API gets the real reason (409, its state)."""
    api_id = _api_in(world, admin_pb2.Api.CREATED)
    application_id = world.application("sam").id
    answer = world.call(transport, "SubscriptionService/CreateSubscription",
                        admin_pb2.CreateSubscriptionRequest(application_id=application_id, api_id=api_id),
                        world.token_of("admin"))
    assert answer.status == "FAILED_PRECONDITION", answer
    assert "CREATED" in str(answer.body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_subscriber_subscribes_to_a_published_api(world: World, transport):
    api_id = _api_in(world, admin_pb2.Api.PUBLISHED)
    answer = _subscribe(world, transport, api_id, world.application("sam").id)
    assert answer.status == "OK", answer
