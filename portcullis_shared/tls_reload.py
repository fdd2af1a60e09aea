"""Certificates rotated under a running server: new connections get the new files, open
connections keep the ones they started with, no restart.

A listener's certificate, key and (for mTLS) client CA are files; whoever rotates them
(the local CA of PORTCULLIS_TLS=auto, cert-manager, an ACME client) replaces them, ideally
each by a rename. Each handshake looks at the files' identity (inode, size, mtime): when it
changed, the files are loaded again; if they do not load (a certificate already replaced,
its key not yet), the previous ones stay in force and the next handshake tries again.

- `ReloadingServerContext`: for asyncio's and uvicorn's TLS (admin_api REST, the native
  h2 front end of authz_server). OpenSSL calls the context's server-name callback on every
  ClientHello, with or without SNI; the callback hands that one connection the current
  context (`SSLObject.context = ...`, the documented way to switch certificates there).
- `reloading_grpc_credentials`: for grpc servers (admin_api's gRPC port with PolicySync and
  xDS, authz_server's grpc front end): grpc calls the fetcher before every new handshake,
  and it answers a new certificate configuration or None for "unchanged".
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Callable, Generic, TypeVar

import grpc

from portcullis_shared.tls import CertKey
from portcullis_shared.tls_context import ALPN_H2, server_context

log = logging.getLogger(__name__)

T = TypeVar("T")
Stamp = tuple[tuple[int, int, int, int] | None, ...]


def _stamp(files: tuple[Path, ...]) -> Stamp:
    """What changes when a file is replaced or rewritten; None for a file that is missing."""
    stamps = []
    for path in files:
        try:
            status = os.stat(path)
        except OSError:
            stamps.append(None)
            continue
        stamps.append((status.st_ino, status.st_dev, status.st_size, status.st_mtime_ns))
    return tuple(stamps)


class _Reloader(Generic[T]):
    """The last good result of `load` for `files`, loaded again when they change."""

    def __init__(self, files: tuple[Path, ...], load: Callable[[], T], what: str) -> None:
        self._files, self._load, self._what = files, load, what
        self._lock = threading.Lock()
        self._seen = _stamp(files)
        self._current = load()     # a broken file at start-up stops the server, loudly
        self.reloads = 0

    def current(self) -> tuple[T, bool]:
        """(the value in force, whether it was reloaded just now)."""
        seen = _stamp(self._files)
        if seen == self._seen:
            return self._current, False
        with self._lock:
            if seen == self._seen:
                return self._current, False
            try:
                fresh = self._load()
            except (OSError, ValueError, ssl.SSLError) as exc:
                # Half rotated (or gone): keep serving what worked; the next handshake retries.
                log.warning("%s: the rotated certificate files do not load yet (%s); keeping the previous ones",
                            self._what, exc)
                return self._current, False
            self._current, self._seen = fresh, seen
            self.reloads += 1
            log.info("%s: certificate files reloaded (%s)", self._what, ", ".join(str(f) for f in self._files))
            return fresh, True


def _files(identity: CertKey, client_ca: Path | None) -> tuple[Path, ...]:
    return (identity.cert_file, identity.key_file) + (() if client_ca is None else (client_ca,))


class ReloadingServerContext:
    """`context` is what the listener gets; every handshake on it runs with the context
    made from the files as they are now (see the module docstring)."""

    def __init__(self, identity: CertKey, *, client_ca: Path | None = None, alpn: tuple[str, ...] = (ALPN_H2,),
                 what: str = "TLS listener") -> None:
        def build() -> ssl.SSLContext:
            return server_context(identity, client_ca=client_ca, alpn=alpn)

        self._reloader = _Reloader(_files(identity, client_ca), build, what)
        self.context = build()
        self.context.sni_callback = self._on_client_hello

    @property
    def reloads(self) -> int:
        return self._reloader.reloads

    def _on_client_hello(self, connection: ssl.SSLObject, _server_name: str | None,
                         _context: ssl.SSLContext) -> None:
        connection.context = self._reloader.current()[0]


def _grpc_configuration(identity: CertKey, client_ca: Path | None) -> grpc.ServerCertificateConfiguration:
    chain, key = identity.read()
    return grpc.ssl_server_certificate_configuration(
        [(key, chain)], root_certificates=None if client_ca is None else client_ca.read_bytes())


def reloading_grpc_credentials(identity: CertKey, *, client_ca: Path | None = None,
                               what: str = "gRPC listener") -> grpc.ServerCredentials:
    """Server credentials presenting `identity` (and, with `client_ca`, requiring a client
    certificate from it), re-read before a handshake whenever the files changed."""
    def load() -> grpc.ServerCertificateConfiguration:
        configuration = _grpc_configuration(identity, client_ca)
        # grpc checks the pair only at the handshake; refuse a mismatched one here instead.
        server_context(identity, client_ca=client_ca)
        return configuration

    reloader = _Reloader(_files(identity, client_ca), load, what)

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        configuration, fresh = reloader.current()
        return configuration if fresh else None

    return grpc.dynamic_ssl_server_credentials(reloader.current()[0], fetch,
                                               require_client_authentication=client_ca is not None)
