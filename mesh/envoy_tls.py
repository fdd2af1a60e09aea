"""The TLS parts of Envoy's bootstrap (PORTCULLIS_TLS): one `transport_socket` per place,
rendered as one line of JSON (YAML's flow style) for envoy/envoy.yaml.tmpl, or "" (a blank
line) with TLS off.

- gateway listener: DownstreamTlsContext, the gateway certificate, ALPN h2 and http/1.1;
- authz cluster: UpstreamTlsContext with Envoy's client certificate (authz_server requires
  it), authz_server's certificate checked against the CA and the address dialled, ALPN h2;
- xds cluster: the same check of admin_api's certificate, ALPN h2.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from portcullis_shared.tls import CertKey, TlsFiles

TLS_SOCKET = "envoy.transport_sockets.tls"
DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
TLS_PARAMS = {"tls_minimum_protocol_version": "TLSv1_2"}


def _certificate(identity: CertKey) -> dict[str, Any]:
    return {"certificate_chain": {"filename": str(identity.cert_file)},
            "private_key": {"filename": str(identity.key_file)}}


def _socket(type_url: str, context: dict[str, Any]) -> str:
    value = {"name": TLS_SOCKET, "typed_config": {"@type": type_url, **context}}
    return "transport_socket: " + json.dumps(value, separators=(", ", ": "))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _upstream(tls: TlsFiles, host: str, identity: CertKey | None) -> str:
    """The server's certificate must chain to the CA and name `host` (the address dialled)."""
    san = {"san_type": "IP_ADDRESS" if _is_ip(host) else "DNS", "matcher": {"exact": host}}
    common: dict[str, Any] = {
        "tls_params": TLS_PARAMS,
        "alpn_protocols": ["h2"],
        "validation_context": {"trusted_ca": {"filename": str(tls.ca_file)}, "match_typed_subject_alt_names": [san]},
    }
    if identity is not None:
        common["tls_certificates"] = [_certificate(identity)]
    context: dict[str, Any] = {"common_tls_context": common}
    if not _is_ip(host):
        context["sni"] = host
    return _socket(UPSTREAM, context)


def gateway_socket(tls: TlsFiles | None) -> str:
    if tls is None:
        return ""
    return _socket(DOWNSTREAM, {"common_tls_context": {
        "tls_params": TLS_PARAMS,
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificates": [_certificate(tls.require("gateway"))],
    }})


def authz_socket(tls: TlsFiles | None, host: str) -> str:
    return "" if tls is None else _upstream(tls, host, tls.require("client"))


def xds_socket(tls: TlsFiles | None, host: str) -> str:
    return "" if tls is None else _upstream(tls, host, None)
