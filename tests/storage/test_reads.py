"""The history read contract (:class:`storage.reads.HistoryReads`), run against every backend
(``backend`` is parametrised in conftest: the memory store and PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from decimal import Decimal
from typing import TypeVar

import msgspec
import pytest

from core.candles import Candle, CandleStatus
from core.gaps import GapReason
from core.intervals import Interval
from core.present import ReadForm
from core.present.packed import pack_candle
from core.present.text import candle_json, candle_record
from core.ticks import Side
from storage import HistoryReads, MarketDataStore
from storage.reads import TickKey
from storage.times import END_OF_TIME
from tests.storage.factories import MINUTE, SECOND, T0, batch, candle, gap, tick

Backend = tuple[MarketDataStore, HistoryReads]
T = TypeVar("T")
HOUR = Interval.parse("1h")
FOREVER = END_OF_TIME


async def collected(chunks: AsyncGenerator[list[T], None], most: int) -> list[list[T]]:
    """Every chunk of a read, each checked to hold at most ``most`` rows."""
    found: list[list[T]] = []
    async with contextlib.aclosing(chunks):
        async for rows in chunks:
            assert 0 < len(rows) <= most
            found.append(rows)
    return found


def beyond_64_bits(minute: int) -> Candle:
    """A candle whose notional needs more than 64 bits at its scales (no packed form)."""
    return msgspec.structs.replace(
        candle(minute), volume_raw=10**15, taker_buy_volume_raw=10**14, quote_volume_raw=10**20
    )


# -- instruments and scales -----------------------------------------------------------------


async def test_instruments_are_those_with_ticks_candles_or_gaps(backend: Backend) -> None:
    store, reads = backend
    await store.write([batch(tick(1, 0, instrument="TEST:CCC"))])
    await store.write(candles=[candle(0, instrument="TEST:AAA")])
    await store.write(gaps=[gap(0, SECOND, instrument="TEST:BBB")])
    assert await reads.instruments() == ["TEST:AAA", "TEST:BBB", "TEST:CCC"]
    for name in ("TEST:AAA", "TEST:BBB", "TEST:CCC"):
        assert await reads.has_instrument(name)
    assert not await reads.has_instrument("TEST:NONE")


async def test_scales_are_the_newest_candles_of_the_interval(backend: Backend) -> None:
    store, reads = backend
    older = msgspec.structs.replace(candle(0), price_scale=4, open_raw=1_005_000,
                                    high_raw=1_020_000, low_raw=1_002_500, close_raw=1_012_500,
                                    quote_volume_raw=3_271_650)  # fmt: skip
    await store.write(candles=[older, candle(1)])
    assert await reads.scales("TEST:BTCUSD", MINUTE) == (2, 3)
    assert await reads.scales("TEST:BTCUSD", HOUR) is None
    assert await reads.scales("TEST:NONE", MINUTE) is None


# -- candle pages ---------------------------------------------------------------------------


async def test_a_page_summary_says_rows_next_start_openness_and_scales(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(m) for m in (0, 1, 2, 5)])
    await store.write(candles=[candle(9, status=CandleStatus.OPEN)])
    page = await reads.candle_page("TEST:BTCUSD", MINUTE, T0, FOREVER, 3)
    assert (page.start, page.rows, page.has_open) == (T0, 3, False)
    assert page.next_start == page.end == T0 + 5 * MINUTE.ns
    assert (page.price_scale, page.size_scale, page.quote_scale, page.vwap_scale) == (2, 3, 5, 6)
    assert page.updated_us is not None
    rest = await reads.candle_page("TEST:BTCUSD", MINUTE, page.end, FOREVER, 3)
    assert (rest.rows, rest.has_open, rest.next_start, rest.end) == (2, True, None, FOREVER)


async def test_a_page_of_an_empty_range_is_empty(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(0)])
    page = await reads.candle_page("TEST:BTCUSD", MINUTE, T0 + MINUTE.ns, FOREVER, 10)
    assert (page.rows, page.has_open, page.updated_us, page.next_start) == (0, False, None, None)
    assert (page.price_scale, page.size_scale) == (0, 0)


async def test_a_page_changes_its_last_change_when_a_candle_is_revised(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(0), candle(1)])
    before = await reads.candle_page("TEST:BTCUSD", MINUTE, T0, FOREVER, 10)
    await store.write(candles=[candle(1, revision=1, close="99.00")])
    after = await reads.candle_page("TEST:BTCUSD", MINUTE, T0, FOREVER, 10)
    assert before.updated_us is not None
    assert after.updated_us is not None
    assert after.updated_us > before.updated_us
    assert after.rows == before.rows == 2


async def ready_body(reads: HistoryReads, form: ReadForm, limit: int, chunk: int) -> bytes:
    read = reads.read_ready(form, "TEST:BTCUSD", MINUTE, T0, FOREVER, limit, chunk)
    await read.open()
    assert read.complete
    if (whole := read.whole) is not None:
        await read.aclose()
        return whole
    return form.separator.join([body async for body in read.chunks()])


ENCODERS = {ReadForm.JSON: candle_json, ReadForm.PACKED: pack_candle}


@pytest.mark.parametrize("form", list(ReadForm))
@pytest.mark.parametrize("chunk", [2, 100])
async def test_a_ready_page_is_its_rows_forms_joined_in_open_time_order(
    backend: Backend, form: ReadForm, chunk: int
) -> None:
    store, reads = backend
    written = [candle(m, close=f"{100 + m}.25") for m in (4, 0, 3, 1, 2, 6)]
    await store.write(candles=written)
    await store.write(candles=[candle(3, revision=2, close="90.00")])
    latest = {c.open_time: c for c in written} | {candle(3).open_time: candle(3, 2, "90.00")}
    page = [latest[t] for t in sorted(latest)][:5]
    expected = form.separator.join([b for b in map(ENCODERS[form], page) if b is not None])
    assert await ready_body(reads, form, 5, chunk) == expected


async def test_a_ready_page_is_whole_when_it_fits_one_chunk(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(m) for m in range(6)])
    for limit, chunk, whole in ((6, 6, True), (10, 7, True), (6, 3, False), (10, 6, False)):
        read = reads.read_ready(ReadForm.JSON, "TEST:BTCUSD", MINUTE, T0, FOREVER, limit, chunk)
        await read.open()
        assert (read.whole is not None) is whole, (limit, chunk)
        await read.aclose()


async def test_a_ready_read_summary_is_the_page_summary(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(m) for m in range(6)])
    read = reads.read_ready(ReadForm.PACKED, "TEST:BTCUSD", MINUTE, T0, FOREVER, 4, 2)
    page = await read.open()
    await read.aclose()
    summary = await reads.candle_page("TEST:BTCUSD", MINUTE, T0, FOREVER, 4)
    assert (page.rows, page.next_start, page.end, page.has_open) == (
        summary.rows, summary.next_start, summary.end, summary.has_open
    )  # fmt: skip
    assert (page.price_scale, page.size_scale) == (summary.price_scale, summary.size_scale)


async def test_a_ready_read_without_a_form_for_every_row_is_incomplete(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(0), beyond_64_bits(1), candle(2)])
    packed = reads.read_ready(ReadForm.PACKED, "TEST:BTCUSD", MINUTE, T0, FOREVER, 10, 10)
    assert (await packed.open()).rows == 3
    assert not packed.complete
    await packed.aclose()
    json = reads.read_ready(ReadForm.JSON, "TEST:BTCUSD", MINUTE, T0, FOREVER, 10, 10)
    await json.open()
    assert json.complete
    await json.aclose()


async def test_a_ready_read_refuses_a_limit_or_chunk_below_one(backend: Backend) -> None:
    _, reads = backend
    for limit, chunk in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match="limit and chunk must be positive"):
            reads.read_ready(ReadForm.JSON, "TEST:BTCUSD", MINUTE, T0, FOREVER, limit, chunk)


# -- candles and their texts ----------------------------------------------------------------


@pytest.mark.parametrize("descending", [False, True])
async def test_candle_chunks_come_in_open_time_order_in_their_latest_revision(
    backend: Backend, descending: bool
) -> None:
    store, reads = backend
    await store.write(candles=[candle(m) for m in range(7)])
    await store.write(
        candles=[candle(2, revision=1, close="95.50"), candle(0, instrument="TEST:X")]
    )
    chunks = reads.candle_chunks(
        "TEST:BTCUSD", MINUTE, T0 + MINUTE.ns, T0 + 6 * MINUTE.ns, 2, descending=descending
    )
    found = [c for rows in await collected(chunks, 2) for c in rows]
    expected = [candle(m) for m in range(1, 6)]
    expected[1] = candle(2, revision=1, close="95.50")
    assert found == (expected[::-1] if descending else expected)


async def test_candles_keep_the_written_decimal_places(backend: Backend) -> None:
    store, reads = backend
    flagged = msgspec.structs.replace(candle(1, close="101.20"), gap=True)
    flat = msgspec.structs.replace(
        candle(2), trades=0, first_trade_id=None, last_trade_id=None, volume_raw=0,
        taker_buy_volume_raw=0, quote_volume_raw=0,
    )  # fmt: skip
    await store.write(candles=[candle(0), flagged, flat])
    found = [c for chunk in await collected(reads.candle_chunks(
        "TEST:BTCUSD", MINUTE, T0, FOREVER, 2), 2) for c in chunk]  # fmt: skip
    rows = [msgspec.structs.astuple(candle_record(c))[2:] for c in found]
    assert (found[1].open_time, *rows[1][1:8]) == (
        T0 + MINUTE.ns, "100.50", "101.95", "100.25", "101.20", "3.250", "327.16500", 7
    )  # fmt: skip
    assert rows[1][9:] == ("1.125", 1010, 1016, "closed", 0, True)
    assert (rows[2][10], rows[2][11], rows[2][14]) == (None, None, False)
    assert [r[8].split(".")[1].__len__() for r in rows] == [c.vwap_scale for c in (flagged,) * 3]
    assert [Decimal(r[8]) for r in rows] == [c.vwap for c in (candle(0), flagged, flat)]


async def test_candle_bars_newest_first_stop_at_the_limit(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(m) for m in range(5)])
    chunks = reads.candle_bars("TEST:BTCUSD", MINUTE, T0, FOREVER, 10, descending=True, limit=3)
    rows = [r for chunk in await collected(chunks, 10) for r in chunk]
    assert [r[0] for r in rows] == [T0 + m * MINUTE.ns for m in (4, 3, 2)]


@pytest.mark.parametrize("descending", [False, True])
async def test_candle_bars_are_the_candles_texts_open_to_volume_and_gap(
    backend: Backend, descending: bool
) -> None:
    store, reads = backend
    flagged = msgspec.structs.replace(candle(3, close="101.20"), gap=True)
    await store.write(candles=[*(candle(m) for m in range(3)), flagged, candle(4)])
    args = ("TEST:BTCUSD", MINUTE, T0 + MINUTE.ns, FOREVER, 2)
    bars = reads.candle_bars(*args, descending=descending, limit=3)
    written = [flagged if m == 3 else candle(m) for m in ((4, 3, 2) if descending else (1, 2, 3))]
    texts = [msgspec.structs.astuple(candle_record(c))[2:] for c in written]  # core.present's
    expected = [(c.open_time, *t[1:6], "true" if c.gap else "false") for c, t in zip(
        written, texts, strict=True)]  # fmt: skip
    assert [b for chunk in await collected(bars, 2) for b in chunk] == expected
    assert len(expected) == 3
    gaps = ["false", "true", "false"] if descending else ["false", "false", "true"]  # 4 3 2; 1 2 3
    assert [b[6] for b in expected] == gaps


async def test_last_open_time_is_the_newest_candle_opening_before(backend: Backend) -> None:
    store, reads = backend
    await store.write(candles=[candle(0), candle(3), candle(8)])
    assert await reads.last_open_time("TEST:BTCUSD", MINUTE, T0 + 8 * MINUTE.ns) == (
        T0 + 3 * MINUTE.ns
    )
    assert await reads.last_open_time("TEST:BTCUSD", MINUTE, T0) is None
    assert await reads.last_open_time("TEST:BTCUSD", HOUR, FOREVER) is None


# -- ticks ----------------------------------------------------------------------------------


async def test_a_tick_page_runs_from_its_first_key_to_the_next_pages(backend: Backend) -> None:
    store, reads = backend
    await store.write([batch(tick(5, 1_000), tick(3, 1_000), tick(9, 2_000), price_scale=2)])
    await store.write([batch(tick(1, 3_000, price="7.125"))])
    first = TickKey(T0 + 1_000, 4)  # after trade 3 of the same nanosecond
    page = await reads.tick_page("TEST:BTCUSD", first, TickKey(FOREVER, 0), 2)
    assert (page.start, page.rows) == (first, 2)
    assert page.next_start == page.end == TickKey(T0 + 3_000, 1)
    assert (page.price_scale, page.size_scale) == (2, 3)
    rows = [r for chunk in await collected(
        reads.tick_rows("TEST:BTCUSD", first, page.end, 1), 1) for r in chunk]  # fmt: skip
    assert [(r[0] - T0, r[1]) for r in rows] == [(1_000, 5), (2_000, 9)]
    assert [r[2] for r in rows] == ["100.50", "100.50"]  # the places it was written with
    assert [(Decimal(r[2]), Decimal(r[3]), r[4], r[5] - r[0], r[6]) for r in rows] == [
        (Decimal("100.50"), Decimal("0.125"), int(Side.BUY), 10**6, 1)
    ] * 2
    last = await reads.tick_page("TEST:BTCUSD", page.end, TickKey(FOREVER, 0), 2)
    assert (last.rows, last.next_start, last.end, last.price_scale) == (
        1, None, TickKey(FOREVER, 0), 3
    )  # fmt: skip


async def test_a_tick_page_keeps_to_its_instrument_and_range(backend: Backend) -> None:
    store, reads = backend
    await store.write([batch(tick(1, 0), tick(2, 500)), batch(tick(3, 250, instrument="TEST:X"))])
    page = await reads.tick_page("TEST:BTCUSD", TickKey(T0, 0), TickKey(T0 + 500, 2), 10)
    assert (page.rows, page.next_start) == (1, None)
    none = await reads.tick_page("TEST:NONE", TickKey(0, 0), TickKey(FOREVER, 0), 10)
    assert (none.rows, none.price_scale, none.size_scale) == (0, 0, 0)


# -- feed gaps ------------------------------------------------------------------------------


async def test_gaps_overlapping_a_range_come_by_start_up_to_the_limit(backend: Backend) -> None:
    store, reads = backend
    await store.write(gaps=[
        gap(5 * SECOND, 6 * SECOND, noticed=0),
        gap(0, 2 * SECOND, GapReason.SEQUENCE, detail="trade ids 4..5 missing"),
        gap(0, 2 * SECOND),
        gap(9 * SECOND, 10 * SECOND),
        gap(0, SECOND, instrument="TEST:X"),
    ])  # fmt: skip
    found = await reads.gaps("TEST:BTCUSD", T0 + SECOND, T0 + 9 * SECOND, 10)
    assert found == [
        (T0, T0 + 2 * SECOND, "disconnected", "connection reset by peer", T0 + 2 * SECOND + 10**6),
        (T0, T0 + 2 * SECOND, "sequence", "trade ids 4..5 missing", T0 + 2 * SECOND + 10**6),
        (T0 + 5 * SECOND, T0 + 6 * SECOND, "disconnected", "connection reset by peer", None),
    ]
    assert await reads.gaps("TEST:BTCUSD", T0 + SECOND, T0 + 9 * SECOND, 2) == found[:2]


async def test_a_store_that_answers_is_reachable(backend: Backend) -> None:
    _, reads = backend
    assert await reads.unreachable() is None
