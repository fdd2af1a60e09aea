"""TLS contexts and gRPC credentials from the resolved certificate files (portcullis_shared.
tls.TlsFiles): one place that says which TLS versions, ALPN and verification every server
and client of the mesh uses.

Every client verifies: the server's chain against PORTCULLIS_TLS_CA_FILE and its name
(or IP address) against the address it dialled. TLS 1.2 is the floor. Servers' contexts and credentials that follow rotated certificate
files are in portcullis_shared.tls_reload.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from portcullis_shared.tls import CertKey

ALPN_H2 = "h2"
ALPN_HTTP11 = "http/1.1"


def server_context(identity: CertKey, *, client_ca: Path | None = None,
                   alpn: tuple[str, ...] = (ALPN_H2,)) -> ssl.SSLContext:
    """A server context presenting `identity`; with `client_ca`, a client certificate
    from that CA is required (mTLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(identity.cert_file, identity.key_file)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    context.set_alpn_protocols(list(alpn))
    return context


def client_context(ca_file: Path, *, identity: CertKey | None = None, system_roots: bool = False,
                   alpn: tuple[str, ...] | None = None) -> ssl.SSLContext:
    """A verifying client context: the mesh's CA (and, with `system_roots`, the system's
    too, for clients that also reach public key managers), presenting `identity` when given."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if system_roots:
        context.load_default_certs()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        context.load_cert_chain(identity.cert_file, identity.key_file)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def grpc_channel_credentials(ca_file: Path, *, identity: CertKey | None = None) -> grpc.ChannelCredentials:
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
    chain, key = identity.read()
    return grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes(), private_key=key,
                                        certificate_chain=chain)
