"""Serialized ext_authz CheckRequests, as Envoy sends them, framed for gRPC over HTTP/2
(h2load posts the same body again and again)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Mapping

from envoy.service.auth.v3 import external_auth_pb2

CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check"


def check_request(path: str, headers: Mapping[str, str] | None = None, *, method: str = "GET",
                  client: str = "127.0.0.1") -> external_auth_pb2.CheckRequest:
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.method = method
    http.path = path
    http.host = "127.0.0.1:8080"
    http.scheme = "http"
    http.protocol = "HTTP/1.1"
    http.id = "bench"
    http.headers.update({":method": method, ":path": path, ":authority": "127.0.0.1:8080",
                         "user-agent": "portcullis-bench", "x-request-id": "bench", **(headers or {})})
    request.attributes.source.address.socket_address.address = client
    request.attributes.source.address.socket_address.port_value = 50000
    return request


def grpc_frame(message: external_auth_pb2.CheckRequest) -> bytes:
    """gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, bytes."""
    body = message.SerializeToString()
    return struct.pack(">BI", 0, len(body)) + body


def write_body(path: Path, message: external_auth_pb2.CheckRequest) -> Path:
    path.write_bytes(grpc_frame(message))
    return path
