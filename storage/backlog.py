"""What the storage writer has read from the bus but not stored yet: a bounded buffer.

It does no I/O. The writer adds what it polls and takes it out, oldest first, once stored.
While the database is away the backlog grows; once it holds ``max_bytes`` it is
:attr:`~WriteBacklog.full` and the writer stops reading. Nothing is dropped: the bus keeps
what the writer has not read (and has not committed), and once the bus's own buffer is full
its publishers wait, so the feed pauses (backpressure) instead of losing anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.bus import Record, next_offsets

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class WriteBacklog:
    """Records in bus order, their total size (keys and values) and the peaks reached."""

    max_bytes: int = DEFAULT_MAX_BYTES
    bytes: int = 0
    peak_bytes: int = 0
    peak_records: int = 0
    _records: deque[Record] = field(default_factory=deque)
    _read: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("the write buffer needs a positive size")

    def __len__(self) -> int:
        return len(self._records)

    @property
    def full(self) -> bool:
        """Holds ``max_bytes`` or more: read nothing more until some of it is stored."""
        return self.bytes >= self.max_bytes

    def add(self, polled: Iterable[Record], fresh: Iterable[Record]) -> None:
        """One poll: ``polled`` is everything read (its offsets are committed once all of it
        is stored), ``fresh`` what of it the store does not hold yet."""
        for tp, offset in next_offsets(polled).items():
            self._read[tp] = max(self._read.get(tp, 0), offset)
        for record in fresh:
            self._records.append(record)
            self.bytes += len(record.key) + len(record.value)
        self.peak_bytes = max(self.peak_bytes, self.bytes)
        self.peak_records = max(self.peak_records, len(self._records))

    def oldest(self, most: int) -> list[Record]:
        """Up to ``most`` records to write next, oldest first (they stay until :meth:`stored`)."""
        return [self._records[i] for i in range(min(most, len(self._records)))]

    def stored(self, records: list[Record]) -> dict[tuple[str, int], int]:
        """Drop ``records`` (what :meth:`oldest` gave, now stored); return the offsets the
        bus may commit now: theirs, or everything read once nothing is held any more."""
        for record in records:
            if self._records.popleft() is not record:
                raise ValueError("stored records must be the oldest held, in order")
            self.bytes -= len(record.key) + len(record.value)
        if self._records:
            return next_offsets(records)
        read, self._read = self._read, {}
        return read
