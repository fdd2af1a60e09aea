"""The developer portal in a real browser (Debian's chromium, Playwright) on the real
mesh: a subscriber signs in at the resident key manager, finds PizzaShack, creates an
application, subscribes with a tier, generates production keys and a token, calls
/menu through Envoy from Try it (200), deletes the keys and sees the denial with its
reason; then API keys with IP restrictions: the wrong network is refused, the right one
answers 200, a revoked key is refused, and the application's usage shows those calls by
API with the denials' reasons; the API's OpenAPI document rendered and downloaded."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import chromium_page
from tests.integration.conftest import LiveMesh
from tests.integration.gateway import PROPAGATION_SECONDS
from tests.integration.scenario import PIZZASHACK_RESOURCES, endpoints, unique

# A browser on a loaded 2-core machine: more than the suite's 120 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]
PASSWORD = "portal-password-1"
OPENAPI = (Path(__file__).parents[1] / "cli" / "data" / "pizzashack-openapi-3.0.yaml").read_text()
# Set to a directory to keep screenshots of the main pages (the README's come from here).
SCREENSHOTS = os.environ.get("PORTCULLIS_PORTAL_SCREENSHOTS", "")


def snap(page: Any, name: str) -> None:
    """A screenshot of the whole page (or of one element: a Locator)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        whole = {"full_page": True} if hasattr(page, "goto") else {}
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), **whole)


@pytest.fixture(scope="module")
def shop(live: LiveMesh) -> dict[str, Any]:
    name = unique("PizzaShack")
    api = live.admin.create_api(name=name, version="1.0.0", context=f"/{name.lower()}",
                                resources=PIZZASHACK_RESOURCES, description="Pizzas, through the portal",
                                security={"api_key": {}, "oauth2": {}}, **endpoints(live))
    live.admin.call("PUT", f"/v1/apis/{api['id']}/definition", {"document": OPENAPI})
    return live.admin.change_lifecycle(api["id"], "PUBLISHED")


@pytest.fixture(scope="module")
def subscriber(live: LiveMesh) -> str:
    username = unique("pia")
    live.admin.create_user(username, PASSWORD, ["subscriber"])
    return username


def portal_url(live: LiveMesh, path: str = "") -> str:
    return f"{live.admin_url}/portal{path}"


def mesh_certificates(live: LiveMesh) -> list[Path]:
    """What chromium must accept with the mesh on TLS: admin_api's certificate (the portal)."""
    files = live.settings.tls_files
    return [] if files is None else [files.require("admin").cert_file]


def sign_in(page: Any, live: LiveMesh, username: str) -> None:
    page.goto(portal_url(live, "/"))
    page.get_by_role("link", name="Sign in").first.click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in and allow").click()
    page.wait_for_url("**/portal/apis")


def says(page: Any, text: str) -> bool:
    """The page (once the navigation a click started is done) shows `text`."""
    page.get_by_text(text).first.wait_for()
    return True


def shown_once_value(page: Any) -> str:
    return str(page.locator("input.once-value").first.input_value())


def try_until(page: Any, path: str, kind: str, credential: str, status: int) -> tuple[str, str]:
    """Send from Try it until the gateway answers `status` (a change takes a moment to
    reach every authz_server worker); answers (status, reason) of the last try."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while True:
        page.get_by_label("Path under").fill(path)
        page.get_by_label("Credential", exact=True).select_option(kind)
        page.get_by_label("Key or token (empty: none)").fill(credential)
        page.get_by_role("button", name="Send").click()
        page.wait_for_selector("#try-status")
        got = page.inner_text("#try-status")
        reason = page.inner_text("#try-reason") if page.locator("#try-reason").count() else ""
        if got == str(status) or time.monotonic() > deadline:
            return got, reason
        time.sleep(0.3)


def test_from_sign_in_to_a_call_through_envoy_with_an_oauth2_token(live: LiveMesh, shop: dict[str, Any],
                                                                    subscriber: str) -> None:
    with chromium_page(trusted=mesh_certificates(live)) as page:
        sign_in(page, live, subscriber)
        page.get_by_label("Search").fill(shop["name"])
        page.get_by_role("button", name="Search").click()
        snap(page, "apis")
        page.get_by_role("link", name=shop["name"]).click()
        assert shop["base_path"] in page.inner_text("#gateway-url")

        page.get_by_role("link", name="create one").click()
        assert says(page, "No applications yet")
        page.get_by_label("Name").fill("PortalApp")
        page.get_by_role("button", name="Create").click()
        page.wait_for_url("**/portal/applications/*")
        application_url = page.url

        page.goto(portal_url(live, f"/apis/{shop['id']}"))
        subscribe = page.get_by_role("form", name="Subscribe")
        subscribe.get_by_label("Tier").select_option("Gold")
        subscribe.get_by_role("button", name="Subscribe").click()
        assert says(page, "Subscribed.") and "Gold" in page.inner_text("table >> nth=1")

        page.goto(application_url)
        page.get_by_role("button", name="Generate production keys").click()
        secret = shown_once_value(page)
        assert secret.startswith("pcsec_")
        production = page.get_by_role("region", name="Production keys")
        production.get_by_label("Consumer secret", exact=True).fill(secret)
        production.get_by_role("button", name="Generate access token").click()
        token = shown_once_value(page)
        assert token.startswith("eyJ")
        snap(page, "application")

        page.goto(portal_url(live, f"/apis/{shop['id']}"))
        status, reason = try_until(page, "/menu", "bearer", token, 200)
        assert (status, reason) == ("200", "")
        snap(page, "api-try-it")
        assert "Margherita" in page.inner_text("#try-body") or page.inner_text("#try-body").startswith("[")

        page.goto(application_url)
        page.get_by_role("button", name="Delete production keys").click()
        assert says(page, "Keys deleted")
        page.goto(portal_url(live, f"/apis/{shop['id']}"))
        status, reason = try_until(page, "/menu", "bearer", token, 401)
        assert status == "401" and reason == "token_client_unknown", (status, reason)


def test_api_keys_with_ip_restrictions_and_a_revoke(live: LiveMesh, shop: dict[str, Any], subscriber: str) -> None:
    with chromium_page(trusted=mesh_certificates(live)) as page:
        sign_in(page, live, subscriber)
        page.goto(portal_url(live, "/applications"))
        page.get_by_label("Name").fill("KeysApp")
        page.get_by_role("button", name="Create").click()
        page.goto(portal_url(live, f"/apis/{shop['id']}"))
        subscribe = page.get_by_role("form", name="Subscribe")
        subscribe.get_by_label("Application").select_option(label="KeysApp")
        subscribe.get_by_role("button", name="Subscribe").click()

        def generate(name: str, ips: str) -> str:
            form = page.get_by_role("form", name="Generate an API key")
            form.get_by_label("Name").fill(name)
            form.get_by_label("Allowed IP addresses").fill(ips)
            form.get_by_label("Application").select_option(label="KeysApp")
            form.get_by_role("button", name="Generate API key").click()
            return shown_once_value(page)

        elsewhere = generate("elsewhere", "192.0.2.0/24")
        status, reason = try_until(page, "/menu", "api_key", elsewhere, 403)
        assert (status, reason) == ("403", "ip_not_allowed")

        here = generate("here", "127.0.0.1")
        assert try_until(page, "/menu", "api_key", here, 200) == ("200", "")

        page.get_by_role("button", name="Revoke here").click()
        assert says(page, "revoked")
        status, reason = try_until(page, "/menu", "api_key", here, 401)
        assert (status, reason) == ("401", "api_key_revoked")

        # The application's usage: the calls above, by API, with the denials' reason.
        page.goto(portal_url(live, "/applications"))
        page.get_by_role("link", name="KeysApp").click()
        deadline = time.monotonic() + PROPAGATION_SECONDS
        while "ip_not_allowed" not in (page.inner_text("#usage-table") if page.locator("#usage-table").count()
                                       else "") and time.monotonic() < deadline:
            time.sleep(0.5)
            page.reload()
        usage = page.inner_text("#usage-table")
        assert shop["name"] in usage and "ip_not_allowed" in usage, usage
        snap(page.locator("#usage-table"), "application-usage")


def test_the_api_reference_from_its_openapi_document(live: LiveMesh, shop: dict[str, Any], subscriber: str) -> None:
    with chromium_page(trusted=mesh_certificates(live)) as page:
        sign_in(page, live, subscriber)
        page.goto(portal_url(live, f"/apis/{shop['id']}"))
        page.get_by_role("link", name="POST /order/{orderId}").click()
        operation = page.get_by_role("region", name="POST /order/{orderId}")
        assert "Place an order" in operation.inner_text()
        assert "orderId (required)" in operation.inner_text() and "Order (object)" in operation.inner_text()
        menu = page.get_by_role("region", name="GET /menu").inner_text()
        assert "array of MenuItem (object)" in menu and "price: number" in menu
        snap(page.locator("#api-reference"), "api-reference")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the document (YAML)").click()
        text = Path(download.value.path()).read_text()
        assert f"url: {live.gateway_url}{shop['base_path']}" in text
        assert download.value.suggested_filename == f"{shop['name']}-1.0.0.yaml"


def test_a_phone_sized_window_by_keyboard(live: LiveMesh, shop: dict[str, Any], subscriber: str) -> None:
    with chromium_page(width=390, height=844, trusted=mesh_certificates(live)) as page:
        sign_in(page, live, subscriber)
        page.get_by_label("Search").focus()
        page.keyboard.type(shop["name"])
        page.keyboard.press("Enter")
        page.wait_for_url("**/portal/apis?q=*")
        link = page.get_by_role("link", name=shop["name"])
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/portal/apis/{shop['id']}")
        for path in ("/apis", f"/apis/{shop['id']}", "/applications"):
            page.goto(portal_url(live, path))
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, (path, overflow)
        snap(page, "phone-applications")
