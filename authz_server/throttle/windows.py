"""The window a limit counts in: aligned to the UTC clock, so that every worker and every
replica agrees on when a window starts without talking to the others.

Second, minute and hour windows start on multiples of their length since the epoch; a
day starts at 00:00 UTC and a month on the 1st at 00:00 UTC (a calendar month, as a paid
plan's "per month" is read).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from authz_server.identity_enum import IdentityHashedEnum


class Unit(IdentityHashedEnum):
    SECOND = "SECOND"
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"
    MONTH = "MONTH"

    @property
    def code(self) -> int:
        """A small stable number for counter keys."""
        return _CODES[self]


_FIXED_SECONDS = {Unit.SECOND: 1, Unit.MINUTE: 60, Unit.HOUR: 3600, Unit.DAY: 86400}
_CODES = {Unit.SECOND: 1, Unit.MINUTE: 2, Unit.HOUR: 3, Unit.DAY: 4, Unit.MONTH: 5}


@dataclass(frozen=True, slots=True)
class Window:
    start: int   # epoch seconds, inclusive
    end: int     # epoch seconds, exclusive

    @property
    def seconds(self) -> int:
        return self.end - self.start

    def reset_after(self, now: float) -> int:
        """Whole seconds until the window ends, at least 1 (for Retry-After and `t=`)."""
        return max(1, int(self.end - now + 0.999999))


# The window each unit was last asked for: nearly every call falls in it, and computing a
# month's window (gmtime, timegm twice) costs several µs. Replaced whole (one dict store).
LAST_WINDOWS: dict[Unit, Window] = {}


def window_at(unit: Unit, now: float) -> Window:
    last = LAST_WINDOWS.get(unit)
    if last is not None and last.start <= now < last.end:
        return last
    window = LAST_WINDOWS[unit] = _window_at(unit, now)
    return window


def _window_at(unit: Unit, now: float) -> Window:
    fixed = _FIXED_SECONDS.get(unit)
    if fixed is not None:
        start = int(now // fixed) * fixed
        return Window(start, start + fixed)
    moment = time.gmtime(now)
    start = calendar.timegm((moment.tm_year, moment.tm_mon, 1, 0, 0, 0))
    year, month = (moment.tm_year + 1, 1) if moment.tm_mon == 12 else (moment.tm_year, moment.tm_mon + 1)
    return Window(start, calendar.timegm((year, month, 1, 0, 0, 0)))


def nominal_seconds(unit: Unit) -> int:
    """The `w=` of a RateLimit-Policy item (a month counts as 30 days there)."""
    return _FIXED_SECONDS.get(unit, 30 * 86400)
