"""TLS settings of every listener and client of the mesh, and the secure-by-default rule.

One naming scheme: `PORTCULLIS_TLS` says whether TLS is on (`on`: certificate files
named by the `PORTCULLIS_TLS_*_FILE` settings; `auto`: the files the mesh makes with a
local CA in `<data dir>/tls/`, see mesh/local_ca.py), and each identity has a
`PORTCULLIS_TLS_<WHO>_CERT_FILE` and `PORTCULLIS_TLS_<WHO>_KEY_FILE`:

  ADMIN    admin_api's REST and gRPC ports (admin services, PolicySync, xDS)
  AUTHZ    authz_server's gRPC port (ext_authz), which requires a client certificate
  GATEWAY  Envoy's gateway listener (downstream TLS, HTTP/2 by ALPN and HTTP/1.1)
  CLIENT   the client certificate Envoy and admin_api present to authz_server (mTLS)

`PORTCULLIS_TLS_CA_FILE` is what every client checks the servers' certificates against,
and what authz_server checks client certificates against.

Secure by default: a server bound to anything but loopback refuses to start without TLS
unless `PORTCULLIS_ALLOW_PLAINTEXT=true` (`plaintext_refusal`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from portcullis_shared.config import SettingsError, SettingsGroup, choice, flag, path, setting, text

TLS_MODES = ("off", "on", "auto")
LOOPBACK_NAMES = ("localhost",)
# Where `auto` keeps the local CA and the certificates it issued (under the data directory).
AUTO_DIR_NAME = "tls"


@dataclass(frozen=True)
class CertKey:
    """One identity: a PEM certificate (chain) and its PEM private key."""

    cert_file: Path
    key_file: Path

    def read(self) -> tuple[bytes, bytes]:
        """(certificate chain, private key) as bytes, for grpc credentials."""
        return self.cert_file.read_bytes(), self.key_file.read_bytes()


@dataclass(frozen=True)
class TlsFiles:
    """The resolved files of a deployment with TLS on: each identity may be absent (a
    process checks, when it starts, that the ones it needs are there: `require`)."""

    ca_file: Path
    admin: CertKey | None
    authz: CertKey | None
    gateway: CertKey | None
    client: CertKey | None

    def require(self, who: str) -> CertKey:
        pair = getattr(self, who)
        if pair is None:
            upper = who.upper()
            raise SettingsError(f"PORTCULLIS_TLS is on but PORTCULLIS_TLS_{upper}_CERT_FILE and "
                                f"PORTCULLIS_TLS_{upper}_KEY_FILE are not both set")
        return pair

    def read_ca(self) -> bytes:
        return self.ca_file.read_bytes()


def _pair(cert: Path | None, key: Path | None, who: str) -> CertKey | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise SettingsError(f"set both PORTCULLIS_TLS_{who}_CERT_FILE and PORTCULLIS_TLS_{who}_KEY_FILE, or neither")
    return CertKey(cert, key)


@dataclass(frozen=True)
class TlsSettings(SettingsGroup):
    """TLS on every listener and client (see the module docstring for the naming scheme)."""

    mode: str = setting(
        "PORTCULLIS_TLS", choice(*TLS_MODES), "off",
        "`on`: every listener of admin_api, authz_server and Envoy's gateway serves TLS from the "
        "`PORTCULLIS_TLS_*_FILE` certificates and every client verifies; `auto`: the same with a local CA and "
        "certificates that `make run` makes in `var/tls/`; `off`: plaintext, refused off loopback (see "
        "[Security](#tls-and-mtls))")
    ca_file: Path | None = setting("PORTCULLIS_TLS_CA_FILE", path, None,
                                   "the CA bundle every client checks server certificates against, and authz_server "
                                   "client certificates", shown="unset (`var/tls/ca.pem` with `auto`)")
    admin_cert_file: Path | None = setting("PORTCULLIS_TLS_ADMIN_CERT_FILE", path, None,
                                           "admin_api's certificate (REST and gRPC: admin services, PolicySync, xDS)",
                                           shown="unset (`var/tls/admin.pem` with `auto`)")
    admin_key_file: Path | None = setting("PORTCULLIS_TLS_ADMIN_KEY_FILE", path, None,
                                          "the private key of `PORTCULLIS_TLS_ADMIN_CERT_FILE`",
                                          shown="unset (`var/tls/admin-key.pem` with `auto`)")
    authz_cert_file: Path | None = setting("PORTCULLIS_TLS_AUTHZ_CERT_FILE", path, None,
                                           "authz_server's certificate (ext_authz gRPC; it requires a client "
                                           "certificate from the CA)", shown="unset (`var/tls/authz.pem` with `auto`)")
    authz_key_file: Path | None = setting("PORTCULLIS_TLS_AUTHZ_KEY_FILE", path, None,
                                          "the private key of `PORTCULLIS_TLS_AUTHZ_CERT_FILE`",
                                          shown="unset (`var/tls/authz-key.pem` with `auto`)")
    gateway_cert_file: Path | None = setting("PORTCULLIS_TLS_GATEWAY_CERT_FILE", path, None,
                                             "Envoy's gateway certificate (API clients; HTTP/2 by ALPN and HTTP/1.1)",
                                             shown="unset (`var/tls/gateway.pem` with `auto`)")
    gateway_key_file: Path | None = setting("PORTCULLIS_TLS_GATEWAY_KEY_FILE", path, None,
                                            "the private key of `PORTCULLIS_TLS_GATEWAY_CERT_FILE`",
                                            shown="unset (`var/tls/gateway-key.pem` with `auto`)")
    client_cert_file: Path | None = setting("PORTCULLIS_TLS_CLIENT_CERT_FILE", path, None,
                                            "the client certificate Envoy and admin_api present to authz_server (mTLS)",
                                            shown="unset (`var/tls/client.pem` with `auto`)")
    client_key_file: Path | None = setting("PORTCULLIS_TLS_CLIENT_KEY_FILE", path, None,
                                           "the private key of `PORTCULLIS_TLS_CLIENT_CERT_FILE`",
                                           shown="unset (`var/tls/client-key.pem` with `auto`)")
    allow_plaintext: bool = setting(
        "PORTCULLIS_ALLOW_PLAINTEXT", flag, False,
        "let a server bound off loopback (`PORTCULLIS_BIND_HOST`) start without TLS, e.g. behind a sidecar that "
        "terminates TLS; PolicySync still sends signing keys only inside TLS or to a loopback peer")
    bind_host: str = setting(
        "PORTCULLIS_BIND_HOST", text, "127.0.0.1",
        "the address admin_api (REST, gRPC), authz_server (gRPC) and Envoy's gateway listen on; metrics and "
        "Envoy's admin stay on 127.0.0.1. Off loopback, TLS is required (`PORTCULLIS_ALLOW_PLAINTEXT`)")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def files(self, data_dir: Path) -> TlsFiles | None:
        """The certificate files in force (None with TLS off); with `auto`, every file not
        set explicitly is the one the local CA made in `<data_dir>/tls/`."""
        if not self.enabled:
            return None
        auto = data_dir / AUTO_DIR_NAME if self.mode == "auto" else None

        def pick(explicit: Path | None, name: str) -> Path | None:
            return explicit if explicit is not None or auto is None else auto / name

        ca = pick(self.ca_file, "ca.pem")
        if ca is None:
            raise SettingsError("PORTCULLIS_TLS=on needs PORTCULLIS_TLS_CA_FILE (what clients verify servers against)")
        return TlsFiles(
            ca_file=ca,
            admin=_pair(pick(self.admin_cert_file, "admin.pem"), pick(self.admin_key_file, "admin-key.pem"), "ADMIN"),
            authz=_pair(pick(self.authz_cert_file, "authz.pem"), pick(self.authz_key_file, "authz-key.pem"), "AUTHZ"),
            gateway=_pair(pick(self.gateway_cert_file, "gateway.pem"), pick(self.gateway_key_file, "gateway-key.pem"),
                          "GATEWAY"),
            client=_pair(pick(self.client_cert_file, "client.pem"), pick(self.client_key_file, "client-key.pem"),
                         "CLIENT"),
        )


class PlaintextRefused(RuntimeError):
    """A server would listen off loopback without TLS."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; anything else (0.0.0.0, ::, a name) is not."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)   # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def plaintext_refusal(tls: TlsSettings, what: str) -> None:
    """Raises PlaintextRefused (saying why and what to set) when `what` would serve
    plaintext on a non-loopback address without PORTCULLIS_ALLOW_PLAINTEXT=true."""
    if tls.enabled or tls.allow_plaintext or is_loopback(tls.bind_host):
        return
    raise PlaintextRefused(
        f"{what} would listen on {tls.bind_host} without TLS: anyone on that network could read tokens, API keys "
        "and signing keys in transit. Set PORTCULLIS_TLS=on with the PORTCULLIS_TLS_*_FILE certificates "
        "(or PORTCULLIS_TLS=auto), bind to loopback (PORTCULLIS_BIND_HOST=127.0.0.1), or, when something else "
        "encrypts this hop, PORTCULLIS_ALLOW_PLAINTEXT=true")
