"""The history read contract: what the history API may ask of storage, and nothing else.

:class:`HistoryReads` is kept by :class:`storage.pg_reads.PostgresReads` (SQL, psycopg) and
by :class:`storage.memory_reads.MemoryReads` (over a :class:`~storage.MemoryStore`); one
suite, ``tests/storage/test_reads.py``, holds both to it. Its callers (``charting``) shape
responses from what it returns and never write SQL.

Results are plain: domain objects (:class:`~core.candles.Candle`), summaries
(:class:`CandlePage`, :class:`TickPage`), and batches of typed rows (:data:`TickRow`,
:data:`GapRow`). A candle's text is :mod:`core.present`'s, never storage's. Times are UTC
nanoseconds; ranges are half-open, on ``open_time`` for candles and (``ts_event``, trade id)
for ticks.

**Ready forms.** Storage keeps pre-encoded forms of every candle beside its row
(:class:`core.present.ReadForm`), written with the candle by :mod:`core.present`'s encoders
(:func:`~core.present.packed.pack_candle`, :func:`~core.present.text.candle_json`), so that
a page of them is the stored bytes joined, with no work per value. To storage a form is
opaque bytes per row and a separator to join rows with; it never parses them, so it does
not know the shapes of the HTTP API. A row without
the form (written by plain SQL, or with a value that does not fit) makes a read
incomplete (:attr:`ReadyRead.complete`): the caller then reads the page as candles.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from core.candles import Candle
from core.intervals import Interval
from core.present.document import ReadForm

CandleBar = tuple[int, str, str, str, str, str, str]
"""The bar of a stored candle (a chart's UDF bar): open time (UTC ns), open, high, low, close
and volume as the exact text they were written with (``1.50`` stays ``1.50``: the text of
:func:`core.present.text.candle_record`), and gap (``true`` or ``false``)."""

TickRow = tuple[int, int, str, str, int, int, int]
"""A stored tick: ``ts_event`` (UTC ns), trade id, price and size as exact text, side
(-1 sell, 0 unknown, 1 buy), ``ts_recv`` (UTC ns), trades."""

GapRow = tuple[int, int, str, str, int | None]
"""A stored feed gap: start and end (UTC ns), reason, detail, noticed (UTC ns, or None when
the connector did not say)."""


@dataclass(frozen=True, slots=True)
class CandlePage:
    """What a page of stored candles holds, known before it is sent.

    ``end`` is where the page stops (exclusive): the next page's start when ``next_start``
    is set, else the end of the range asked for. ``updated_us`` is the page's last change
    (epoch microseconds); the scales are the finest decimal places of its columns.
    """

    start: int
    end: int
    rows: int
    has_open: bool
    updated_us: int | None
    next_start: int | None
    price_scale: int
    size_scale: int
    quote_scale: int
    vwap_scale: int


@dataclass(frozen=True, slots=True)
class TickKey:
    """A tick's place in the order of ticks: (``ts_event`` ns, trade id)."""

    ns: int
    trade_id: int


@dataclass(frozen=True, slots=True)
class TickPage:
    """What a page of ticks holds: ``end`` is the next page's start (``next_start``) when
    the range holds more, else the end asked for."""

    start: TickKey
    end: TickKey
    rows: int
    price_scale: int
    size_scale: int
    next_start: TickKey | None


def check_page_bounds(limit: int, chunk: int) -> None:
    """Refuse a page read of no rows or of chunks of no rows (every backend's first check)."""
    if limit < 1 or chunk < 1:
        raise ValueError("limit and chunk must be positive")


class ReadyRead(Protocol):
    """One page of stored candles in one :class:`ReadForm`: :meth:`open` gives its
    summary, then :attr:`whole` or :meth:`chunks` its rows' bytes joined."""

    complete: bool
    """Whether every row of the page has the form (after :meth:`open`); else read the page
    as candles (:meth:`HistoryReads.candle_chunks`)."""

    async def open(self) -> CandlePage: ...

    @property
    def whole(self) -> bytes | None:
        """The whole page's bytes when it fits one chunk (``limit`` at most ``chunk``, or
        fewer than ``chunk`` rows in the range; after :meth:`open`), else None: take them
        from :meth:`chunks`."""
        ...

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The page's bytes, a chunk of rows at a time; releases the read when done."""
        ...

    async def aclose(self) -> None:
        """Release what the read holds (idempotent)."""
        ...


class HistoryReads(Protocol):
    """Reads of stored history, bounded and in key order. Streams come in chunks of at most
    ``chunk`` rows; close them (``contextlib.aclosing``) when stopping early."""

    async def unreachable(self) -> str | None:
        """``None`` when the store answers; else why not (no secrets)."""
        ...

    async def instruments(self) -> list[str]:
        """Every instrument with ticks, candles or feed gaps, sorted."""
        ...

    async def has_instrument(self, instrument: str) -> bool:
        """Whether ``instrument`` has ever been written (instruments are never removed)."""
        ...

    async def scales(self, instrument: str, interval: Interval) -> tuple[int, int] | None:
        """Price and size decimal places of the newest ``interval`` candle, if any."""
        ...

    async def candle_page(
        self, instrument: str, interval: Interval, start: int, end: int, limit: int
    ) -> CandlePage:
        """Summary of the first ``limit`` stored candles opening in ``[start, end)``."""
        ...

    def read_ready(
        self,
        form: ReadForm,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        limit: int,
        chunk: int,
    ) -> ReadyRead:
        """The first ``limit`` stored candles opening in ``[start, end)`` in ``form``."""
        ...

    def candle_chunks(
        self,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        chunk: int,
        *,
        descending: bool = False,
    ) -> AsyncGenerator[list[Candle], None]:
        """Stored candles opening in ``[start, end)``, by open time (newest first when
        ``descending``)."""
        ...

    def candle_bars(
        self,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        chunk: int,
        *,
        descending: bool = False,
        limit: int | None = None,
    ) -> AsyncGenerator[list[CandleBar], None]:
        """Stored candles opening in ``[start, end)`` as :data:`CandleBar` s, by open time
        (newest first when ``descending``), at most ``limit``."""
        ...

    async def last_open_time(self, instrument: str, interval: Interval, before: int) -> int | None:
        """Open time of the newest stored candle opening before ``before``."""
        ...

    async def tick_page(
        self, instrument: str, start: TickKey, end: TickKey, limit: int
    ) -> TickPage:
        """Summary of the first ``limit`` ticks from ``start`` (inclusive) to ``end``."""
        ...

    def tick_rows(
        self, instrument: str, start: TickKey, end: TickKey, chunk: int
    ) -> AsyncGenerator[list[TickRow], None]:
        """Ticks from ``start`` (inclusive) to ``end`` (exclusive), in key order."""
        ...

    async def gaps(self, instrument: str, start: int, end: int, limit: int) -> list[GapRow]:
        """The first ``limit`` feed gaps of ``instrument`` overlapping ``[start, end)``, by
        start, end and reason."""
        ...
