"""Counter slots in one shared memory file, mapped by every worker of an authz_server.

Why shared memory: a decision holds the GIL, so authz_server runs one process per core,
and a limit must hold across all of them (a counter per worker would admit L × workers;
L / workers is wrong for small L and for uneven load). Every worker maps the same file
and takes one lock per decision (an in-process mutex for its threads, then `flock` for
the other processes: ~1.5 µs together), so counting is exact, not approximate.

The table is open addressing over fixed 64-byte slots (eight int64 cells): a slot holds a
counter's key fingerprint, its current window and its figures; a slot whose window has
ended is free for any key. Each process remembers where its keys live, and checks the
fingerprint before trusting it. When every slot a key may use is live (the table is too
small for the number of counters in use) the key counts in this process only, and that is
logged once: raise PORTCULLIS_THROTTLE_COUNTERS.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import threading
from contextlib import contextmanager
from typing import Iterator

from authz_server.throttle.quota import Quota
from authz_server.throttle.windows import Window

log = logging.getLogger(__name__)

MAGIC = 0x31_5254_5450_4350  # "PCPTTR1", little-endian-ish: a file of this format
CELLS = 8                    # int64 cells per slot
HEADER_CELLS = CELLS         # the header takes one slot's room
PROBES = 32                  # slots a key may live in
# Cells of a slot.
FINGERPRINT, START, END, COUNT, LEASE, USED, FLAGS, LIMIT = range(CELLS)
# FLAGS bits (Redis mode): the shared store granted nothing more in this window; a refill
# is on its way.
EXHAUSTED = 1
PENDING = 2

_OVERFLOW_SLOTS = 4096


class TableFormatError(RuntimeError):
    """The file is not a counter table of this format."""


class SharedTable:
    def __init__(self, fd: int, slots: int) -> None:
        self._fd = fd
        self._map = mmap.mmap(fd, (slots + 1) * CELLS * 8)
        self.cells = memoryview(self._map).cast("q")
        self.slots = slots
        self._mutex = threading.Lock()
        self._where: dict[str, int] = {}          # key -> slot (this process's memory of it)
        self._overflow = memoryview(bytearray(_OVERFLOW_SLOTS * CELLS * 8)).cast("q")
        self._overflow_where: dict[str, int] = {}
        self._overflow_warned = False

    # --- files -------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str, slots: int) -> "SharedTable":
        """A new, empty table at `path` (replacing any file there), readable by its owner only."""
        if slots < 1:
            raise ValueError("a counter table needs at least one slot")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, (slots + 1) * CELLS * 8)   # zero-filled: every slot empty
        table = cls(fd, slots)
        table.cells[1] = slots
        table.cells[0] = MAGIC
        return table

    @classmethod
    def open(cls, path: str) -> "SharedTable":
        """The table another process created (the supervisor, for its workers)."""
        fd = os.open(path, os.O_RDWR)
        size = os.fstat(fd).st_size
        if size < HEADER_CELLS * 8 or size % (CELLS * 8):
            os.close(fd)
            raise TableFormatError(f"{path} is not a throttle counter table ({size} bytes)")
        table = cls(fd, size // (CELLS * 8) - 1)
        if table.cells[0] != MAGIC or table.cells[1] != table.slots:
            table.close()
            raise TableFormatError(f"{path} is not a throttle counter table of this version")
        return table

    @classmethod
    def private(cls, slots: int) -> "SharedTable":
        """A table no other process sees (a single-process authz_server, tests)."""
        fd = os.memfd_create("portcullis-throttle", os.MFD_CLOEXEC) if hasattr(os, "memfd_create") else None
        if fd is None:  # pragma: no cover (not Linux)
            import tempfile
            handle, path = tempfile.mkstemp(prefix="portcullis-throttle-")
            os.unlink(path)
            fd = handle
        os.ftruncate(fd, (slots + 1) * CELLS * 8)
        table = cls(fd, slots)
        table.cells[1] = slots
        table.cells[0] = MAGIC
        return table

    def close(self) -> None:
        if self._fd < 0:
            return
        self.cells.release()
        self._overflow.release()
        self._map.close()
        os.close(self._fd)
        self._fd = -1

    # --- use ---------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Every read and write of slots happens inside this (microseconds, never network)."""
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def acquire(self) -> None:
        """`locked()` without the context manager's generator (~1 µs a decision): the
        decision path calls acquire(), then release() in a `finally`."""
        self._mutex.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def take_one(self, quota: Quota, window: Window) -> int:
        """Count one call on `quota`'s counter in `window` (none when it is at its limit and
        stops there), under the lock; the count before this call. The usual decision (one
        limit applies) in one call: acquire, slot and release inlined (~1 µs of ~3)."""
        mutex, fd = self._mutex, self._fd
        mutex.acquire()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                cells = self.cells
                base = self._where.get(quota.key)
                if base is None or cells[base + FINGERPRINT] != quota.fingerprint or cells[base + START] != window.start:
                    cells, base = self.slot(quota, window)
                value = cells[base + COUNT]
                if value < quota.limit or not quota.stop_on_quota_reach:
                    cells[base + COUNT] = value + 1
                return value
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            mutex.release()

    def slot(self, quota: Quota, window: Window) -> tuple[memoryview, int]:
        """(cells, base) of `quota`'s counter in `window`, reset when its window has moved on.
        Call it inside `locked()`."""
        cells = self.cells
        fingerprint = quota.fingerprint
        base = self._where.get(quota.key)
        if base is None or cells[base + FINGERPRINT] != fingerprint:
            base = self._find(quota.key, fingerprint, window)
            if base is None:
                return self._overflow_slot(quota, window)
        if cells[base + START] != window.start:
            _reset(cells, base, window)
        return cells, base

    def _find(self, key: str, fingerprint: int, window: Window) -> int | None:
        cells = self.cells
        first_free = None
        home = fingerprint % self.slots
        for probe in range(min(PROBES, self.slots)):
            base = HEADER_CELLS + ((home + probe) % self.slots) * CELLS
            held = cells[base + FINGERPRINT]
            if held == fingerprint:
                break
            if first_free is None and (held == 0 or cells[base + END] <= window.start):
                first_free = base
        else:
            if first_free is None:
                return None
            base = first_free
            cells[base + FINGERPRINT] = fingerprint
            _reset(cells, base, window)
        if len(self._where) >= 4 * self.slots:
            self._where.clear()
        self._where[key] = base
        return base

    def _overflow_slot(self, quota: Quota, window: Window) -> tuple[memoryview, int]:
        if not self._overflow_warned:
            self._overflow_warned = True
            log.warning("throttle counter table full (%d slots): some counters count in one worker only; "
                        "raise PORTCULLIS_THROTTLE_COUNTERS", self.slots)
        cells = self._overflow
        base = self._overflow_where.get(quota.key)
        if base is None:
            if len(self._overflow_where) >= _OVERFLOW_SLOTS:
                self._overflow_where.clear()
            base = len(self._overflow_where) * CELLS
            self._overflow_where[quota.key] = base
            cells[base + FINGERPRINT] = quota.fingerprint
            _reset(cells, base, window)
        elif cells[base + START] != window.start:
            _reset(cells, base, window)
        return cells, base


def _reset(cells: memoryview, base: int, window: Window) -> None:
    cells[base + START] = window.start
    cells[base + END] = window.end
    cells[base + COUNT] = 0
    cells[base + LEASE] = 0
    cells[base + USED] = 0
    cells[base + FLAGS] = 0
    cells[base + LIMIT] = 0
