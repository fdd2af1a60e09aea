"""Fixtures every test folder shares."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.authz_server.oauth import KIT_JWKS
from tests.fake_idp import FakeIdp


@pytest.fixture(scope="session")
def idp_server() -> Iterator[FakeIdp]:
    """The fake external IdP (tests/fake_idp.py) on its own port, for the whole session."""
    with FakeIdp() as idp:
        yield idp


@pytest.fixture
def provider(idp_server: FakeIdp) -> Iterator[FakeIdp]:
    """The fake IdP, well-behaved and with nothing recorded, serving the OAuth2 kit's keys
    (rsa-1, ec-1); it answers any introspection caller, and records who called."""
    yield idp_server.reset(jwks_document=KIT_JWKS, verify_introspection_caller=False)
    idp_server.reset()  # releases a stalled introspection
