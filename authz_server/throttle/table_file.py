"""The supervisor's part of throttling: one counter table file for all its workers.

Made before the first worker starts and named to them in PORTCULLIS_THROTTLE_TABLE; a
restarted worker maps the same file, so its counts survive it. In /dev/shm (memory) when
there is one; removed when the supervisor stops, so an authz_server restart starts every
window's count from zero (with Redis, the counts are in Redis and survive).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

from authz_server.throttle.shared_table import SharedTable


@contextmanager
def shared_counter_table(slots: int) -> Iterator[str]:
    """The path of a new, empty table, removed on exit."""
    directory = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    handle, path = tempfile.mkstemp(prefix="portcullis-throttle-", dir=directory)
    os.close(handle)
    try:
        SharedTable.create(path, slots).close()
        yield path
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
