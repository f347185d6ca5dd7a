"""UTC nanoseconds as PostgreSQL's microsecond timestamps, for range reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

END_OF_TIME: Final = 253_370_764_800 * 1_000_000_000
"""9999-01-01T00:00:00Z: every time a read takes is before it; the end of an open range."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def at_or_after(ns: int) -> datetime:
    """The first microsecond at or after ``ns`` (at most :data:`END_OF_TIME`)."""
    return _EPOCH + timedelta(microseconds=-(-min(ns, END_OF_TIME) // 1000))


def at_or_before(ns: int) -> datetime:
    """``ns`` truncated to the microsecond (at most :data:`END_OF_TIME`)."""
    return _EPOCH + timedelta(microseconds=min(ns, END_OF_TIME) // 1000)
