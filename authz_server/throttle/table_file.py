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

from authz_server.settings import THROTTLE_TABLE_VARIABLE
from authz_server.throttle.shared_table import SharedTable


@contextmanager
def shared_counter_table(slots: int) -> Iterator[str]:
    directory = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    handle, path = tempfile.mkstemp(prefix="portcullis-throttle-", dir=directory)
    os.close(handle)
    SharedTable.create(path, slots).close()
    previous = os.environ.get(THROTTLE_TABLE_VARIABLE)
    os.environ[THROTTLE_TABLE_VARIABLE] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(THROTTLE_TABLE_VARIABLE, None)
        else:
            os.environ[THROTTLE_TABLE_VARIABLE] = previous
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
