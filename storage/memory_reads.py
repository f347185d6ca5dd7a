"""The memory store's :class:`~storage.reads.HistoryReads`: the same contract as PostgreSQL's,
worked out from the stored candles, ticks and gaps (``tests/storage/test_reads.py``).

Ready forms are encoded on read with the functions the PostgreSQL store writes them with
(:data:`FORM_ENCODERS`), so a page's bytes are the same on both.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Final

from core.candles import VWAP_EXTRA_PLACES, Candle, CandleStatus
from core.intervals import Interval
from core.numbers import format_fixed, to_raw
from core.present import ReadForm
from core.present.packed import pack_candle
from core.present.text import candle_json, candle_record, value_text
from core.ticks import Tick
from storage.memory_store import MemoryStore
from storage.reads import (
    CandleBar,
    CandlePage,
    GapRow,
    TickKey,
    TickPage,
    TickRow,
    check_page_bounds,
)
from storage.times import END_OF_TIME

FORM_ENCODERS: Final[dict[ReadForm, Callable[[Candle], bytes | None]]] = {
    ReadForm.JSON: candle_json,
    ReadForm.PACKED: pack_candle,
}
"""Each ready form's encoder: what the PostgreSQL store writes into the form's column
(:func:`storage.candle_rows.candle_row`)."""


class MemoryReads:
    """The history reads of ``store`` (``MemoryReads(store)``)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def unreachable(self) -> str | None:
        return None

    async def instruments(self) -> list[str]:
        return await self._store.instruments()

    async def has_instrument(self, instrument: str) -> bool:
        return instrument in await self._store.instruments()

    async def scales(self, instrument: str, interval: Interval) -> tuple[int, int] | None:
        found = await self._store.last_candles(instrument, interval, END_OF_TIME, 1)
        return None if not found else (found[0].price_scale, found[0].size_scale)

    async def _range(
        self, instrument: str, interval: Interval, start: int, end: int
    ) -> list[Candle]:
        return await self._store.candles(instrument, interval, start, end)

    async def candle_page(
        self, instrument: str, interval: Interval, start: int, end: int, limit: int
    ) -> CandlePage:
        return _page(
            self._store, await self._range(instrument, interval, start, end), start, end, limit
        )

    def read_ready(
        self,
        form: ReadForm,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        limit: int,
        chunk: int,
    ) -> MemoryReadyRead:
        check_page_bounds(limit, chunk)
        return MemoryReadyRead(self._store, form, instrument, interval, start, end, limit, chunk)

    async def candle_chunks(
        self,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        chunk: int,
        *,
        descending: bool = False,
    ) -> AsyncGenerator[list[Candle], None]:
        found = await self._range(instrument, interval, start, end)
        if descending:
            found.reverse()
        for offset in range(0, len(found), chunk):
            yield found[offset : offset + chunk]

    async def candle_bars(
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
        candles = self.candle_chunks(instrument, interval, start, end, chunk, descending=descending)
        async with contextlib.aclosing(candles) as chunks:
            async for found in chunks:
                yield [candle_bar(c) for c in found[:limit]]
                if limit is not None and (limit := limit - len(found)) <= 0:
                    break

    async def last_open_time(self, instrument: str, interval: Interval, before: int) -> int | None:
        found = await self._store.last_candles(instrument, interval, before, 1)
        return found[0].open_time if found else None

    async def _ticks(self, instrument: str, start: TickKey, end: TickKey) -> list[TickRow]:
        store = self._store
        found = store.tick_list(instrument, start.ns, min(end.ns, END_OF_TIME) + 1)
        return [
            _tick_row(t, *store.tick_scales(t))
            for t in found
            if (start.ns, start.trade_id) <= (t.ts_event, t.trade_id) < (end.ns, end.trade_id)
        ]

    async def tick_page(
        self, instrument: str, start: TickKey, end: TickKey, limit: int
    ) -> TickPage:
        found = await self._ticks(instrument, start, end)
        page = found[:limit]
        after = found[limit] if len(found) > limit else None
        next_start = None if after is None else TickKey(after[0], after[1])
        return TickPage(
            start=start,
            end=end if next_start is None else next_start,
            rows=len(page),
            price_scale=max((_places(row[2]) for row in page), default=0),
            size_scale=max((_places(row[3]) for row in page), default=0),
            next_start=next_start,
        )

    async def tick_rows(
        self, instrument: str, start: TickKey, end: TickKey, chunk: int
    ) -> AsyncGenerator[list[TickRow], None]:
        found = await self._ticks(instrument, start, end)
        for offset in range(0, len(found), chunk):
            yield found[offset : offset + chunk]

    async def gaps(self, instrument: str, start: int, end: int, limit: int) -> list[GapRow]:
        found = await self._store.gaps(instrument, start, end)
        return [
            (g.start_ns, g.end_ns, g.reason.value, g.detail, g.ts_recv or None)
            for g in found[:limit]
        ]


class MemoryReadyRead:
    """A page of the memory store in a ready form, encoded at :meth:`open`; whole or in
    chunks as PostgreSQL's (:attr:`storage.reads.ReadyRead.whole`)."""

    def __init__(
        self,
        store: MemoryStore,
        form: ReadForm,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
        limit: int,
        chunk: int,
    ) -> None:
        self._store = store
        self._form = form
        self._range = (instrument, interval, start, end)
        self._limit = limit
        self._chunk = chunk
        self._rows: list[bytes] | None = None
        self.complete = True

    async def open(self) -> CandlePage:
        instrument, interval, start, end = self._range
        found = await self._store.candles(instrument, interval, start, end)
        encode = FORM_ENCODERS[self._form]
        encoded = [encode(candle) for candle in found[: self._limit]]
        self._rows = [row for row in encoded if row is not None]
        self.complete = len(self._rows) == len(encoded)
        return _page(self._store, found, start, end, self._limit)

    @property
    def whole(self) -> bytes | None:
        rows = self._rows
        if rows is None or (self._limit > self._chunk and len(rows) >= self._chunk):
            return None
        return self._form.separator.join(rows)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        if self._rows is None:
            raise RuntimeError("open the read before taking its chunks")
        for offset in range(0, len(self._rows), self._chunk):
            yield self._form.separator.join(self._rows[offset : offset + self._chunk])

    async def aclose(self) -> None:
        return None


def _page(
    store: MemoryStore, found: Sequence[Candle], start: int, end: int, limit: int
) -> CandlePage:
    page = found[:limit]
    next_start = found[limit].open_time if len(found) > limit else None
    ps = max((c.price_scale for c in page), default=0)
    ss = max((c.size_scale for c in page), default=0)
    return CandlePage(
        start=start,
        end=end if next_start is None else next_start,
        rows=len(page),
        has_open=any(c.status is CandleStatus.OPEN for c in page),
        updated_us=max((store.written_us(c) for c in page), default=None),
        next_start=next_start,
        price_scale=ps,
        size_scale=ss,
        quote_scale=ps + ss,
        vwap_scale=ps + VWAP_EXTRA_PLACES,
    )


def _tick_row(tick: Tick, price_scale: int, size_scale: int) -> TickRow:
    """A tick as text at the places it was written with, as PostgreSQL's NUMERIC keeps them."""
    price = format_fixed(to_raw(tick.price, price_scale), price_scale)
    size = format_fixed(to_raw(tick.size, size_scale), size_scale)
    return (tick.ts_event, tick.trade_id, price, size, int(tick.side), tick.ts_recv, tick.trades)


def _places(text: str) -> int:
    return len(text) - text.index(".") - 1 if "." in text else 0


def candle_bar(candle: Candle) -> CandleBar:
    """A candle as a :data:`~storage.reads.CandleBar` (its texts are
    :func:`core.present.text.candle_record`'s, as PostgreSQL's NUMERIC gives them)."""
    r = candle_record(candle)
    return (candle.open_time, r.open, r.high, r.low, r.close, r.volume, value_text(r.gap))
