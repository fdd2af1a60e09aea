"""Fixtures every test folder shares."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from tests.authz_server.oauth import KIT_JWKS
from tests.fake_idp import FakeIdp
from tests.postgres_server import PostgresServer, find_bin_dir

NO_POSTGRES = "PostgreSQL is not installed (Debian package postgresql; .ci/run installs it): its tests are skipped"


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, with a migrated template database
    (tests/postgres_server.py). Not installed: its tests are skipped, except in CI
    (CI=true), where .ci/run installs it and a missing server is a failure."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(NO_POSTGRES.replace(": its tests are skipped", ""))
        pytest.skip(NO_POSTGRES)
    server = PostgresServer(bin_dir)
    try:
        server.init().start().wait_ready()
        server.make_template()
        yield server
    finally:
        server.destroy()
