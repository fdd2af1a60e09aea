"""The sample backend in-process (fast, not integration-marked)."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import httpx
import pytest

from sample_backend.server import BackendServer


@pytest.fixture(scope="module")
def backend() -> Iterator[str]:
    server = BackendServer(("127.0.0.1", 0), "sandbox")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def client(backend: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=backend, trust_env=False, timeout=5) as http:
        yield http


def test_menu_under_any_base_path(client: httpx.Client) -> None:
    response = client.get("/pizzashack/1.0.0/menu")
    assert response.status_code == 200
    assert response.headers["x-backend-environment"] == "sandbox"
    assert {"name", "description", "price", "icon"} <= set(response.json()[0])


def test_echo_shows_what_arrived(client: httpx.Client) -> None:
    response = client.post("/any/base/echo/more?b=1&b=2&empty=", headers={"X-Mixed-Case": "v"}, content=b"12345")
    echo = response.json()
    assert echo["environment"] == "sandbox"
    assert echo["method"] == "POST"
    assert echo["path"] == "/any/base/echo/more"
    assert echo["query"] == {"b": ["1", "2"], "empty": [""]}
    assert echo["headers"]["x-mixed-case"] == "v"
    assert echo["body_bytes"] == 5


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/healthz", 200),
    ("GET", "/nothing/here", 404),
    ("POST", "/p/menu", 405),
    ("POST", "/p/order/7", 201),
])
def test_every_answer_names_the_environment(client: httpx.Client, method: str, path: str, status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-backend-environment"] == "sandbox"


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /echo HTTP/1.1\r\ncontent-length: abc\r\n\r\n",
    b"GET /echo HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"\xff\xfe\x00\r\n\r\n",
], ids=["no-method", "length-not-a-number", "negative-length", "bad-chunk", "binary"])
def test_malformed_requests_get_a_400_and_the_server_keeps_serving(backend: str, client: httpx.Client, raw: bytes) -> None:
    port = int(backend.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        answer = conn.recv(4096)
    assert b"400" in answer.split(b"\r\n", 1)[0] or b"Error code: 400" in answer
    assert client.get("/healthz").status_code == 200


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="environment"):
        BackendServer(("127.0.0.1", 0), "staging")
