"""The PizzaShack walkthrough end to end through Envoy: create and publish the API,
generate a key, create an application, subscribe, associate, call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveMesh
from tests.integration.gateway import assert_allowed, assert_denied, describe, eventually, wait_until
from tests.integration.scenario import PIZZASHACK_RESOURCES, PublishedApi, create_api, endpoints

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pizzashack(live: LiveMesh) -> tuple[PublishedApi, str, dict[str, Any]]:
    admin = live.admin
    api = admin.create_api(
        name="PizzaShackAPI",
        version="1.0.0",
        context="/pizzashack",
        resources=PIZZASHACK_RESOURCES,
        description="The PizzaShack sample",
        **endpoints(live),
    )
    assert api["base_path"] == "/pizzashack/1.0.0"
    assert api["lifecycle_state"] == "CREATED"
    api = admin.change_lifecycle(api["id"], "PUBLISHED")
    assert api["lifecycle_state"] == "PUBLISHED"
    shack = PublishedApi(live, api)
    key, value = shack.new_key("pizzashack-prod", environment="PRODUCTION")
    assert value.startswith("pck_")
    assert "value" not in key and value not in str(key), "the key's metadata must not carry its value"
    app = admin.create_application("PizzaShackApp")
    admin.subscribe(app["id"], api["id"])
    associated = admin.associate(key["id"], app["id"])
    assert associated["application_id"] == app["id"]
    eventually(lambda: shack.get("/menu", key=value), 200)
    return shack, value, app


def test_menu_with_the_key_in_the_header(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, value, _app = pizzashack
    response = shack.get("/menu", key=value)
    assert_allowed(response, "production")
    menu = response.json()
    assert isinstance(menu, list) and menu
    assert {"name", "description", "price", "icon"} <= set(menu[0])


def test_menu_with_the_key_in_the_query_parameter(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, value, _app = pizzashack
    response = shack.get("/menu", key=value, in_query=True)
    assert_allowed(response, "production")
    assert response.json()[0]["name"]


def test_order_with_a_path_parameter(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, value, _app = pizzashack
    response = shack.live.gateway.post(shack.base_path + "/order/42", headers={"apikey": value}, json={"pizza": 1})
    assert response.status_code == 201, response.text
    assert response.json()["orderId"] == "42"


def test_the_key_header_and_client_portcullis_headers_never_reach_the_backend(
    pizzashack: tuple[PublishedApi, str, dict[str, Any]],
) -> None:
    shack, value, _app = pizzashack
    response = shack.get(
        "/echo",
        key=value,
        headers={
            "x-portcullis-environment": "sandbox",  # a production key must not pick sandbox
            "x-portcullis-api-id": "forged",
            "X-Portcullis-Anything": "forged",
            "x-other": "kept",
        },
    )
    assert_allowed(response, "production")
    echo = response.json()
    assert echo["environment"] == "production"
    headers = echo["headers"]
    assert "apikey" not in headers
    assert headers.get("x-other") == "kept"
    forged = {name: v for name, v in headers.items() if name.startswith("x-portcullis-") and v == "forged"}
    assert forged == {}
    assert headers.get("x-portcullis-environment", "production") == "production"
    assert value not in str(echo)


def test_the_key_query_parameter_never_reaches_the_backend(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, value, _app = pizzashack
    response = shack.get("/echo/deeper", key=value, in_query=True, params={"size": "large"})
    assert_allowed(response, "production")
    echo = response.json()
    assert echo["path"] == "/echo/deeper"  # the endpoint has no path: the base path is replaced by "/"
    assert echo["query"] == {"size": ["large"]}
    assert value not in str(echo)


def test_no_key_is_credential_missing_with_a_challenge(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, _value, _app = pizzashack
    response = shack.get("/menu")
    assert_denied(response, 401, "credential_missing")
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("APIKey"), challenge
    assert 'realm="portcullis"' in challenge and 'header="apikey"' in challenge


def test_unknown_key_is_invalid(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, _value, _app = pizzashack
    response = shack.get("/menu", key="pck_" + "A" * 43)
    assert_denied(response, 401, "api_key_invalid")
    assert "www-authenticate" in response.headers


def test_a_key_for_another_api_is_refused(live: LiveMesh, pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, _value, _app = pizzashack
    other = create_api(live, subscription_less=True)
    _key, other_value = other.new_key()
    eventually(lambda: other.get("/menu", key=other_value), 200)

    def refused() -> httpx.Response:
        # One 200 above came from one worker; another may not have the key yet and refuse it
        # as unknown (api_key_invalid). Refused either way, never allowed.
        response = shack.get("/menu", key=other_value)
        assert response.status_code == 401, describe(response)
        return response

    eventually(refused, 401, "api_key_wrong_api")


def test_unknown_resource_and_unknown_api(pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, value, _app = pizzashack
    assert_denied(shack.get("/drinks", key=value), 404, "resource_not_found")
    assert_denied(shack.live.gateway.get("/no-such-api/1.0.0/menu", headers={"apikey": value}), 404, "api_not_found")


def test_the_access_log_records_the_decision(live: LiveMesh, pizzashack: tuple[PublishedApi, str, dict[str, Any]]) -> None:
    shack, value, _app = pizzashack
    shack.get("/menu", key=value, in_query=True)
    log = live.mesh["envoy"].log_path
    assert log is not None

    def logged() -> str:
        return log.read_text(encoding="utf-8", errors="replace")

    # Envoy flushes its access log every --file-flush-interval-msec: poll for the entry.
    wait_until(lambda: '"reason":"allowed"' in logged(), "an access log entry with reason allowed", timeout=5.0)
    assert value not in logged(), "an API key reached Envoy's access log"



@pytest.mark.parametrize("path", ["/pizzashack/1.0.0/echo/../menu", "/pizzashack//1.0.0///menu", "/pizzashack/1.0.0/./menu"],
                         ids=["dot-dot", "double-slashes", "dot"])
def test_envoy_normalises_the_path_before_the_decision(pizzashack: tuple[PublishedApi, str, dict[str, Any]], path: str) -> None:
    shack, value, _app = pizzashack
    response = shack.live.gateway.get(path, headers={"apikey": value})
    assert_allowed(response, "production")
    assert isinstance(response.json(), list), "the normalised path is /menu, decided and served as such"


@pytest.mark.parametrize("path", ["/pizzashack/1.0.0/echo%2F..%2Fmenu", "/pizzashack/1.0.0/echo%5c..%5cmenu"], ids=["slash", "backslash"])
def test_envoy_rejects_escaped_slashes(pizzashack: tuple[PublishedApi, str, dict[str, Any]], path: str) -> None:
    shack, value, _app = pizzashack
    assert_denied(shack.live.gateway.get(path, headers={"apikey": value}), 400, "bad_request")
