"""The TLS parts of Envoy's bootstrap (PORTCULLIS_TLS): one `transport_socket` per place,
rendered as one line of JSON (YAML's flow style) for envoy/envoy.yaml.tmpl, or "" (a blank
line) with TLS off.

- gateway listener: DownstreamTlsContext, the gateway certificate, ALPN h2 and http/1.1;
- authz cluster: UpstreamTlsContext with Envoy's client certificate (authz_server requires
  it), authz_server's certificate checked against the CA and the address dialled, ALPN h2;
- xds cluster: the same check of admin_api's certificate, ALPN h2.

Rotated certificate files apply without a restart: the contexts do not name the files
themselves but secrets that Envoy reads by file-based SDS (`sds_config.path_config_source`,
one small JSON file per secret in `<data dir>/envoy-sds/`, written by `write_secrets`). A
secret delivered that way names the certificate, key and CA files, and Envoy watches them
(inotify): when one is replaced, by a rename as mesh.local_ca and certificate managers do
it, Envoy reads them again and new connections use them; open ones keep theirs. A pair
read half rotated (the key replaced, the certificate not yet) is rejected and the previous
one stays until the next change. (Files named inline in a context, as before, are read
once at start-up: a static context does not reload.)
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from portcullis_shared.tls import CertKey, TlsFiles

TLS_SOCKET = "envoy.transport_sockets.tls"
DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
TLS_PARAMS = {"tls_minimum_protocol_version": "TLSv1_2"}
SDS_DIR_NAME = "envoy-sds"
# The secrets Envoy's contexts refer to, by name (one file each under SDS_DIR_NAME).
GATEWAY_SECRET = "gateway-certificate"
CLIENT_SECRET = "client-certificate"
CA_SECRET = "mesh-ca"


def _certificate(identity: CertKey) -> dict[str, Any]:
    return {"certificate_chain": {"filename": str(identity.cert_file)},
            "private_key": {"filename": str(identity.key_file)}}


def secrets(tls: TlsFiles) -> dict[str, dict[str, Any]]:
    """Every secret the contexts use, by name: the identities Envoy presents (when set)
    and the CA it checks authz_server and admin_api against."""
    out: dict[str, dict[str, Any]] = {CA_SECRET: {"validation_context": {"trusted_ca": {"filename": str(tls.ca_file)}}}}
    if tls.gateway is not None:
        out[GATEWAY_SECRET] = {"tls_certificate": _certificate(tls.gateway)}
    if tls.client is not None:
        out[CLIENT_SECRET] = {"tls_certificate": _certificate(tls.client)}
    return out


def secret_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def write_secrets(tls: TlsFiles | None, directory: Path) -> None:
    """One SDS file per secret in `directory` (nothing with TLS off), each written whole
    and renamed into place. They hold file names only, no key material."""
    if tls is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, secret in secrets(tls).items():
        document = {"resources": [{"@type": SECRET, "name": name, **secret}]}
        path = secret_path(directory, name)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def _sds(directory: Path, name: str) -> dict[str, Any]:
    """An SdsSecretConfig: the secret `name`, read from its file (and watched)."""
    return {"name": name, "sds_config": {"path_config_source": {"path": str(secret_path(directory, name))},
                                         "resource_api_version": "V3"}}


def _socket(type_url: str, context: dict[str, Any]) -> str:
    value = {"name": TLS_SOCKET, "typed_config": {"@type": type_url, **context}}
    return "transport_socket: " + json.dumps(value, separators=(", ", ": "))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _upstream(directory: Path, host: str, present_client_certificate: bool) -> str:
    """The server's certificate must chain to the CA and name `host` (the address dialled)."""
    san = {"san_type": "IP_ADDRESS" if _is_ip(host) else "DNS", "matcher": {"exact": host}}
    common: dict[str, Any] = {
        "tls_params": TLS_PARAMS,
        "alpn_protocols": ["h2"],
        "combined_validation_context": {
            "default_validation_context": {"match_typed_subject_alt_names": [san]},
            "validation_context_sds_secret_config": _sds(directory, CA_SECRET),
        },
    }
    if present_client_certificate:
        common["tls_certificate_sds_secret_configs"] = [_sds(directory, CLIENT_SECRET)]
    context: dict[str, Any] = {"common_tls_context": common}
    if not _is_ip(host):
        context["sni"] = host
    return _socket(UPSTREAM, context)


def gateway_socket(tls: TlsFiles | None, directory: Path) -> str:
    if tls is None:
        return ""
    tls.require("gateway")
    return _socket(DOWNSTREAM, {"common_tls_context": {
        "tls_params": TLS_PARAMS,
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificate_sds_secret_configs": [_sds(directory, GATEWAY_SECRET)],
    }})


def authz_socket(tls: TlsFiles | None, host: str, directory: Path) -> str:
    if tls is None:
        return ""
    tls.require("client")
    return _upstream(directory, host, present_client_certificate=True)


def xds_socket(tls: TlsFiles | None, host: str, directory: Path) -> str:
    return "" if tls is None else _upstream(directory, host, present_client_certificate=False)
