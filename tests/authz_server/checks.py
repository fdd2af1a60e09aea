"""Real Envoy CheckRequests for adapter and gRPC tests."""

from __future__ import annotations

from typing import Mapping, Sequence

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2


def check_request(
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    header_map: Sequence[tuple[str, str]] | None = None,
    peer: str = "203.0.113.7",
) -> external_auth_pb2.CheckRequest:
    http = attribute_context_pb2.AttributeContext.HttpRequest(id="req-1", method=method, path=path, host="localhost:8080")
    if header_map is not None:
        http.header_map.CopyFrom(
            base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in header_map])
        )
    else:
        http.headers.update(headers or {})
    source = attribute_context_pb2.AttributeContext.Peer(
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(address=peer, port_value=51000))
    )
    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            source=source, request=attribute_context_pb2.AttributeContext.Request(http=http)
        )
    )


def header_dict(options) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for option in options:
        found.setdefault(option.header.key, []).append(option.header.value)
    return found
