"""A fake Dispatcher for the REST layer's own tests: it records each call and answers a
canned message (or raises a canned error). The real dispatcher is tested by the
admin_api tests and, once, through this app in test_real_dispatcher.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from google.protobuf import message_factory
from google.protobuf.message import Message
from starlette.testclient import TestClient

from admin_api.access.caller import Caller, Role
from admin_api.errors import Unauthenticated
from admin_api.transports.rest import create_app
from admin_api.schema import admin_services

TOKEN = "pca_test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CALLER = Caller(subject="test-admin", organization_id="default", role=Role.ADMIN)
PACKAGE = "portcullis.admin.v1"


def output_class(method_full_name: str) -> type[Message]:
    service, method = method_full_name.split("/")
    descriptor = next(d for d in admin_services() if d.full_name == service)
    return message_factory.GetMessageClass(descriptor.methods_by_name[method].output_type)


@dataclass
class Call:
    method: str
    request: Message
    caller: Caller


@dataclass
class FakeDispatcher:
    answers: dict[str, Message] = field(default_factory=dict)  # by short method name
    error: Exception | None = None
    calls: list[Call] = field(default_factory=list)
    tokens_seen: list[str | None] = field(default_factory=list)

    def authenticate(self, bearer_token: str | None) -> Caller:
        self.tokens_seen.append(bearer_token)
        if bearer_token != TOKEN:
            raise Unauthenticated("invalid credential")
        return CALLER

    def call(self, method_full_name: str, request: Message, caller: Caller) -> Message:
        self.calls.append(Call(method_full_name, request, caller))
        if self.error is not None:
            raise self.error
        short = method_full_name.split("/")[1]
        if short in self.answers:
            return self.answers[short]
        return output_class(method_full_name)()

    @property
    def last(self) -> Call:
        assert self.calls, "the dispatcher was not called"
        return self.calls[-1]


@pytest.fixture
def dispatcher() -> FakeDispatcher:
    return FakeDispatcher()


@pytest.fixture
def client(dispatcher: FakeDispatcher) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a 500 must come back as a problem, not as a raise.
    with TestClient(create_app(dispatcher), raise_server_exceptions=False) as test_client:
        yield test_client
