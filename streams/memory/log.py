"""One partition's log for the in-process bus: a bounded list of records, and a wake-up signal."""

from __future__ import annotations

import asyncio

from streams.bus import Record


class Signal:
    """Wakes every task waiting at the moment it fires (a one-shot event per firing)."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        """Wait for the next :meth:`fire` (cancel it to give up, e.g. with a timeout)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        finally:
            if future in self._waiters:
                self._waiters.remove(future)

    def fire(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for future in waiters:
                if not future.done():
                    future.set_result(None)


class PartitionLog:
    """Records ``base .. end - 1`` of one partition.

    Trimmed from the front, never past ``hold`` (the lowest offset an active group still
    needs), so that at most ``capacity`` records stay once the groups have caught up.
    """

    __slots__ = ("_head", "_records", "base", "capacity", "space")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.base = 0
        self._records: list[Record] = []
        self._head = 0  # index in _records of offset `base`
        self.space = Signal()
        """Fires when room may have appeared (a commit, a member leaving, the bus closing)."""

    @property
    def end(self) -> int:
        """The offset the next record gets."""
        return self.base + len(self._records) - self._head

    def append(self, record: Record, hold: int | None) -> None:
        """Add ``record``; then drop the oldest beyond capacity that no active group needs."""
        self._records.append(record)
        excess = self.end - self.base - self.capacity
        if excess > 0:
            drop = excess if hold is None else min(excess, hold - self.base)
            if drop > 0:
                self._head += drop
                self.base += drop
                if self._head > len(self._records) // 2:
                    del self._records[: self._head]
                    self._head = 0

    def read(self, offset: int, limit: int) -> list[Record]:
        """Up to ``limit`` records from ``offset`` (from ``base`` if ``offset`` is older)."""
        start = self._head + max(offset, self.base) - self.base
        return self._records[start : start + limit]
