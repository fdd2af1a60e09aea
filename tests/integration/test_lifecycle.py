"""Each lifecycle state of an API as the gateway sees it."""

from __future__ import annotations

import pytest

from tests.integration.admin_client import AdminCallFailed
from tests.integration.conftest import LiveMesh
from tests.integration.gateway import assert_allowed, assert_denied, eventually
from tests.integration.scenario import create_api

pytestmark = pytest.mark.integration


def test_every_lifecycle_state_through_the_gateway(live: LiveMesh) -> None:
    api = create_api(live, publish=False)
    assert api.api["lifecycle_state"] == "CREATED"
    # A request for a CREATED API is refused before any credential is looked at.
    eventually(lambda: api.get("/menu", key="pck_" + "x" * 43), 404, "api_not_deployed")

    api.admin.change_lifecycle(api.id, "PUBLISHED")
    app, _subscription = api.subscribed_app()
    _key, value = api.new_key(application_id=app["id"])
    assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))

    # BLOCKED before DEPRECATED, so that the 200 after it can only come from DEPRECATED.
    api.admin.change_lifecycle(api.id, "BLOCKED")
    eventually(lambda: api.get("/menu", key=value), 403, "api_blocked")

    api.admin.change_lifecycle(api.id, "DEPRECATED")
    assert_allowed(eventually(lambda: api.get("/menu", key=value), 200))

    api.admin.change_lifecycle(api.id, "RETIRED")
    eventually(lambda: api.get("/menu", key=value), 404, "api_not_deployed")


def test_retired_is_final(live: LiveMesh) -> None:
    api = create_api(live)
    api.admin.change_lifecycle(api.id, "RETIRED")
    with pytest.raises(AdminCallFailed, match="409"):
        api.admin.change_lifecycle(api.id, "PUBLISHED")
    eventually(lambda: api.get("/menu"), 404, "api_not_deployed")
