"""The JWKS cache: each key source's keys in memory, refreshed in the background and, on
an unknown `kid`, at most once per `min_refresh_seconds` (single-flight), so a flood of
tokens with made-up kids costs the provider one request, not one per token.

A failed fetch keeps the last good keys. Entries are keyed by `KeySource` (JWKS URI and
certificate), so key managers that share a JWKS share its entry and its refresh budget.
The cache is runtime state: it lives outside the immutable policy index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Callable

import httpx

from authz_server import offload
from authz_server.index.key_managers import KeySource
from authz_server.index.policy_index import PolicyIndex
from authz_server.key_managers.http import FetchError, fetch_json, new_client
from authz_server.key_managers.jwks import KeyParseError, KeySet, VerificationKey, merge, parse_certificate, parse_jwks
from authz_server.metrics.recorder import recorder

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 512 * 1024


class JwksUnavailable(Exception):
    """No keys could be fetched for the source and none are cached."""


class _Entry:
    def __init__(self, source: KeySource) -> None:
        self.source = source
        self.keys: KeySet | None = None
        self.generation = 0                       # +1 for every successful load
        self.last_forced = float("-inf")          # monotonic time of the last unknown-kid refresh
        self.last_failure = float("-inf")         # monotonic time of the last failed load
        self.lock = threading.Lock()              # single flight: one fetch per entry at a time


def _keys_of(entry: _Entry) -> KeySet | None:
    return entry.keys


class JwksCache:
    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        timeout: float = 2.0,
        min_refresh_seconds: float = 10.0,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client or new_client(timeout)
        self._timeout = timeout
        self._min_refresh = min_refresh_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[KeySource, _Entry] = OrderedDict()
        self._entries_lock = threading.Lock()
        self.fetches = 0    # HTTP fetches attempted, for logs and tests

    # --- what the JWT stage calls ----------------------------------------------------------

    def key_for(self, source: KeySource, kid: str | None) -> VerificationKey | None:
        """The key for `kid`, or None when the source has no such key even after an allowed
        refresh. Raises JwksUnavailable when there are no keys at all."""
        entry = self._entry(source)
        if entry.keys is None:
            self._load(entry, reason="first use")
            # Read again through a function: the type checker still holds `entry.keys` to be
            # None after the load, and a compiled build (authz_server/compiled) would check it.
            if _keys_of(entry) is None:
                raise JwksUnavailable(f"no keys for {source.jwks_uri or 'the certificate'}")
        keys = _keys_of(entry)
        assert keys is not None   # loaded above, and a load never drops keys it had
        key = keys.find(kid)
        if key is not None or not source.jwks_uri:
            return key
        self._load(entry, reason="unknown kid", forced=True)
        keys = _keys_of(entry)
        return keys.find(kid) if keys is not None else None

    # --- what the background refresher calls ---------------------------------------------

    def refresh(self, source: KeySource) -> None:
        self._load(self._entry(source), reason="scheduled")

    def cached_sources(self) -> list[KeySource]:
        with self._entries_lock:
            return list(self._entries)

    def close(self) -> None:
        self._client.close()

    # --- internals -------------------------------------------------------------------------

    def _entry(self, source: KeySource) -> _Entry:
        with self._entries_lock:
            entry = self._entries.get(source)
            if entry is None:
                entry = self._entries[source] = _Entry(source)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(source)
            return entry

    def _load(self, entry: _Entry, *, reason: str, forced: bool = False) -> None:
        seen = entry.generation
        requested = reason != "scheduled"
        offload.acquire(entry.lock)   # inline: never wait for another call's fetch
        try:
            if requested and entry.generation != seen:
                return   # another request loaded the keys while this one waited
            now = self._clock()
            if forced:
                if now - entry.last_forced < self._min_refresh:
                    return   # rate limited: the answer is "unknown kid"
            elif requested and entry.keys is None and now - entry.last_failure < self._min_refresh:
                return       # the provider failed moments ago: do not ask again per request
            if entry.source.jwks_uri:
                offload.ensure_may_block()   # before any state changes: the retry sees the same
            if forced:
                entry.last_forced = now
            try:
                keys = self._read(entry.source)
            except (FetchError, KeyParseError) as exc:
                entry.last_failure = now
                kept = "keeping the last good keys" if entry.keys is not None else "no keys cached"
                log.warning("JWKS %s (%s) failed: %s; %s", entry.source.jwks_uri or "certificate", reason, exc, kept)
                return
            entry.keys = keys
            entry.generation += 1
            log.info("JWKS %s loaded (%s): %d keys", entry.source.jwks_uri or "certificate", reason, len(keys))
        finally:
            entry.lock.release()

    def _read(self, source: KeySource) -> KeySet:
        certificate = parse_certificate(source.certificate_pem) if source.certificate_pem else None
        if not source.jwks_uri:
            return merge(None, certificate)
        self.fetches += 1
        try:
            document = fetch_json(self._client, "GET", source.jwks_uri, timeout=self._timeout, max_bytes=MAX_JWKS_BYTES)
            keys = merge(parse_jwks(document, source=source.jwks_uri), certificate)
        except (FetchError, KeyParseError):
            recorder.jwks_fetch(source.jwks_uri, failed=True)
            if certificate is not None:
                return certificate
            raise
        recorder.jwks_fetch(source.jwks_uri, failed=False)
        return keys


class JwksRefresher:
    """A daemon thread: refresh every cached source each `interval` seconds, and at once
    the sources of key managers that were added or changed (a store listener)."""

    def __init__(self, cache: JwksCache, *, interval: float = 300.0) -> None:
        self._cache = cache
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pending: set[KeySource] = set()
        self._pending_lock = threading.Lock()
        self._refresher: threading.Thread | None = None

    def on_policy_change(self, previous: PolicyIndex | None, current: PolicyIndex) -> None:
        changed = set()
        for key_manager in current.key_managers.values():
            old = previous.key_managers.get(key_manager.id) if previous is not None else None
            if old is key_manager or not key_manager.enabled or not key_manager.accepts_jwt or not key_manager.key_source:
                continue
            changed.add(key_manager.key_source)
        if changed:
            with self._pending_lock:
                self._pending |= changed
            self._wake.set()

    def start(self) -> None:
        self._refresher = threading.Thread(target=self._run, name="jwks-refresh", daemon=True)
        self._refresher.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._refresher is not None:
            self._refresher.join(timeout)

    def _run(self) -> None:
        next_full = time.monotonic() + self._interval
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, next_full - time.monotonic()))
            self._wake.clear()
            if self._stopping.is_set():
                return
            with self._pending_lock:
                sources, self._pending = self._pending, set()
            if time.monotonic() >= next_full:
                sources |= set(self._cache.cached_sources())
                next_full = time.monotonic() + self._interval
            for source in sources:
                if self._stopping.is_set():
                    return
                try:
                    self._cache.refresh(source)
                except Exception:  # the thread must survive anything; the cache keeps old keys
                    log.exception("JWKS refresh of %s failed", source.jwks_uri or "certificate")
