"""The storage contract, run against every backend (``store`` is parametrised in conftest)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from core.candles import CandleStatus
from core.gaps import GapReason
from core.intervals import Interval
from core.rejects import RejectedTick, RejectReason
from core.ticks import Side
from storage import MarketDataStore, Rejection
from tests.storage.factories import MINUTE, SECOND, T0, batch, candle, gap, tick

FOREVER = 2**62


# -- ticks ----------------------------------------------------------------------------------


async def test_ticks_read_back_with_exact_decimals(store: MarketDataStore) -> None:
    written = batch(
        tick(1, 0, price="87648.21", size="0.00012345"),
        tick(2, 1, price="0.00000001", size="123456789.5", side=Side.SELL),
        tick(3, 2, price="1.50", size="2", side=Side.UNKNOWN),
    )
    await store.write([written])
    read = await store.ticks("TEST:BTCUSD", 0, FOREVER)
    assert read.ticks() == written.ticks()
    assert [t.price for t in read.ticks()] == [
        Decimal("87648.21"),
        Decimal("0.00000001"),
        Decimal("1.5"),
    ]


async def test_ticks_come_back_ordered_by_event_time_then_trade_id(
    store: MarketDataStore,
) -> None:
    await store.write([batch(tick(5, 2_000), tick(9, 1_000), tick(7, 1_000))])
    await store.write([batch(tick(3, 1_500))])
    read = await store.ticks("TEST:BTCUSD", 0, FOREVER)
    assert read.trade_id.tolist() == [7, 9, 3, 5]


async def test_tick_range_includes_start_and_excludes_end(store: MarketDataStore) -> None:
    await store.write([batch(*(tick(i, i * 500) for i in range(10)))])  # 0, 500, ... 4500 ns
    read = await store.ticks("TEST:BTCUSD", T0 + 1_000, T0 + 3_000)
    assert read.trade_id.tolist() == [2, 3, 4, 5]
    assert len(await store.ticks("TEST:BTCUSD", T0 + 1_001, T0 + 1_500)) == 0


async def test_tick_range_keeps_nanoseconds_exact_within_one_microsecond(
    store: MarketDataStore,
) -> None:
    await store.write([batch(tick(1, 1_000), tick(2, 1_001), tick(3, 1_999), tick(4, 2_000))])
    read = await store.ticks("TEST:BTCUSD", T0 + 1_001, T0 + 2_000)
    assert read.trade_id.tolist() == [2, 3]
    assert (read.ts_event - T0).tolist() == [1_001, 1_999]


async def test_ticks_of_other_instruments_stay_out_of_a_range(store: MarketDataStore) -> None:
    await store.write(
        [
            batch(tick(1, 0), tick(2, 10)),
            batch(tick(1, 0, instrument="TEST:ETHUSD"), tick(3, 5, instrument="TEST:ETHUSD")),
        ]
    )
    read = await store.ticks("TEST:ETHUSD", 0, FOREVER)
    assert read.instrument == "TEST:ETHUSD"
    assert read.trade_id.tolist() == [1, 3]


async def test_an_empty_range_gives_an_empty_batch(store: MarketDataStore) -> None:
    read = await store.ticks("TEST:NONE", 0, FOREVER)
    assert len(read) == 0
    assert read.instrument == "TEST:NONE"


async def test_writing_the_same_ticks_again_leaves_no_duplicates(store: MarketDataStore) -> None:
    ticks = batch(*(tick(i, i * SECOND) for i in range(50)))
    first = await store.write([ticks])
    again = await store.write([ticks])
    assert (first.ticks_written, first.ticks_duplicate) == (50, 0)
    assert (again.ticks_written, again.ticks_duplicate) == (0, 50)
    assert len(await store.ticks("TEST:BTCUSD", 0, FOREVER)) == 50


async def test_a_partly_repeated_write_adds_only_the_new_ticks(store: MarketDataStore) -> None:
    await store.write([batch(*(tick(i, i) for i in range(10)))])
    report = await store.write([batch(*(tick(i, i) for i in range(5, 15)))])
    assert (report.ticks_written, report.ticks_duplicate) == (5, 5)
    read = await store.ticks("TEST:BTCUSD", 0, FOREVER)
    assert read.trade_id.tolist() == list(range(15))


async def test_the_same_trade_id_on_another_instrument_is_another_tick(
    store: MarketDataStore,
) -> None:
    await store.write([batch(tick(1, 0))])
    report = await store.write([batch(tick(1, 0, instrument="TEST:ETHUSD"))])
    assert report.ticks_written == 1


async def test_the_last_trade_of_each_instrument_is_the_latest_by_event_time_then_trade_id(
    store: MarketDataStore,
) -> None:
    await store.write([batch(tick(5, 2_000), tick(9, 1_000), tick(6, 2_000), tick(3, 1_500))])
    await store.write([batch(tick(40, 500, instrument="TEST:ETHUSD"))])
    await store.write([batch(tick(4, 1_999))])  # written last, but earlier
    await store.write(candles=[candle(0, instrument="TEST:SOLUSD")])  # no ticks
    wanted = ["TEST:BTCUSD", "TEST:ETHUSD", "TEST:SOLUSD", "TEST:NONE", "TEST:BTCUSD"]
    assert await store.last_trades(wanted) == {
        "TEST:BTCUSD": (6, T0 + 2_000),
        "TEST:ETHUSD": (40, T0 + 500),
    }
    assert await store.last_trades(["TEST:ETHUSD"]) == {"TEST:ETHUSD": (40, T0 + 500)}
    assert await store.last_trades([]) == {}


async def test_batches_of_different_scales_read_back_as_one_exact_batch(
    store: MarketDataStore,
) -> None:
    await store.write([batch(tick(1, 0, price="100.5", size="2"), price_scale=1, size_scale=0)])
    await store.write([batch(tick(2, 1, price="100.125", size="0.0001"))])
    read = await store.ticks("TEST:BTCUSD", 0, FOREVER)
    assert [(t.price, t.size) for t in read.ticks()] == [
        (Decimal("100.5"), Decimal(2)),
        (Decimal("100.125"), Decimal("0.0001")),
    ]


# -- candles --------------------------------------------------------------------------------


async def test_candles_read_back_equal(store: MarketDataStore) -> None:
    written = [candle(0), candle(1, status=CandleStatus.OPEN)]
    await store.write(candles=written)
    read = await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER)
    assert read == written
    assert [c.vwap for c in read] == [c.vwap for c in written]


async def test_candle_upserts_are_idempotent(store: MarketDataStore) -> None:
    written = [candle(0), candle(1)]
    first = await store.write(candles=written)
    again = await store.write(candles=written)
    assert (first.candles_written, again.candles_written, again.candles_ignored) == (2, 0, 2)
    assert await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER) == written


async def test_a_higher_revision_replaces_the_stored_candle(store: MarketDataStore) -> None:
    await store.write(candles=[candle(0, revision=1, close="101.25")])
    revised = candle(0, revision=2, close="99.00", status=CandleStatus.REVISED)
    report = await store.write(candles=[revised])
    assert report.candles_written == 1
    assert await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER) == [revised]


@pytest.mark.parametrize("revision", [0, 2], ids=["lower", "equal"])
async def test_a_lower_or_equal_revision_never_overwrites(
    store: MarketDataStore, revision: int
) -> None:
    stored = candle(0, revision=2, close="101.25")
    await store.write(candles=[stored])
    report = await store.write(candles=[candle(0, revision=revision, close="99.00")])
    assert (report.candles_written, report.candles_ignored) == (0, 1)
    assert await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER) == [stored]


async def test_the_highest_revision_in_one_write_wins_whatever_the_order(
    store: MarketDataStore,
) -> None:
    revisions = [candle(0, revision=r, close=f"10{r}.00") for r in (1, 3, 2)]
    report = await store.write(candles=revisions)
    assert (report.candles_written, report.candles_ignored) == (1, 2)
    assert await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER) == [revisions[1]]


async def test_candle_range_includes_start_and_excludes_end_in_open_time_order(
    store: MarketDataStore,
) -> None:
    await store.write(candles=[candle(m) for m in (4, 0, 3, 1, 2)])
    read = await store.candles("TEST:BTCUSD", MINUTE, T0 + MINUTE.ns, T0 + 4 * MINUTE.ns)
    assert [(c.open_time - T0) // MINUTE.ns for c in read] == [1, 2, 3]
    between = await store.candles("TEST:BTCUSD", MINUTE, T0 + 1, T0 + MINUTE.ns + 1)
    assert [(c.open_time - T0) // MINUTE.ns for c in between] == [1]


async def test_the_last_candles_are_the_newest_before_a_time_however_old(
    store: MarketDataStore,
) -> None:
    await store.write(candles=[candle(m) for m in (4, 0, 3, 1, 2, 500_000)])
    await store.write(
        candles=[candle(0, instrument="TEST:ETHUSD"), candle(3, interval=Interval.parse("1h"))]
    )
    last = await store.last_candles("TEST:BTCUSD", MINUTE, T0 + 4 * MINUTE.ns, 3)
    assert [(c.open_time - T0) // MINUTE.ns for c in last] == [1, 2, 3]
    everything = await store.last_candles("TEST:BTCUSD", MINUTE, FOREVER, 100)
    assert [(c.open_time - T0) // MINUTE.ns for c in everything] == [0, 1, 2, 3, 4, 500_000]
    assert await store.last_candles("TEST:BTCUSD", MINUTE, T0, 10) == []
    assert await store.last_candles("TEST:BTCUSD", MINUTE, FOREVER, 0) == []


async def test_candle_ranges_keep_to_one_instrument_and_interval(store: MarketDataStore) -> None:
    hour = Interval.parse("1h")
    await store.write(
        candles=[candle(0), candle(0, instrument="TEST:ETHUSD"), candle(0, interval=hour)]
    )
    read = await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER)
    assert [(c.instrument, c.interval) for c in read] == [("TEST:BTCUSD", MINUTE)]


async def test_a_candle_without_trades_reads_back_without_trade_ids(
    store: MarketDataStore,
) -> None:
    full = candle(0)
    flat = type(full)(
        **{
            **{f: getattr(full, f) for f in full.__struct_fields__},
            "open_time": T0 + MINUTE.ns,
            "open_raw": full.close_raw,
            "high_raw": full.close_raw,
            "low_raw": full.close_raw,
            "volume_raw": 0,
            "quote_volume_raw": 0,
            "taker_buy_volume_raw": 0,
            "trades": 0,
            "first_trade_id": None,
            "last_trade_id": None,
        }
    )
    await store.write(candles=[flat])
    (read,) = await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER)
    assert read == flat
    assert (read.volume, read.vwap) == (Decimal("0.000"), Decimal(0))


async def test_a_candle_over_a_feed_gap_reads_back_flagged(store: MarketDataStore) -> None:
    flagged = msgspec.structs.replace(candle(1), gap=True)
    await store.write(candles=[candle(0), flagged])
    read = await store.candles("TEST:BTCUSD", MINUTE, 0, FOREVER)
    assert read == [candle(0), flagged]
    assert [c.gap for c in read] == [False, True]


# -- feed gaps ------------------------------------------------------------------------------


async def test_feed_gaps_read_back_where_they_overlap_the_range(store: MarketDataStore) -> None:
    gaps = [
        gap(1_000, 2_000),
        gap(5_000, 9_000, GapReason.SEQUENCE, detail="trade ids 101..104 missing"),
        gap(5_000, 9_000),  # the same span for another reason is another gap
        gap(3_000, 4_000, instrument="TEST:ETHUSD"),
        gap(20_000, 20_001, noticed=0),  # the connector did not say when it noticed
    ]
    report = await store.write(gaps=gaps)
    assert (report.gaps_written, report.gaps_duplicate) == (5, 0)
    whole = await store.gaps("TEST:BTCUSD", 0, FOREVER)
    assert whole == [gaps[0], gaps[2], gaps[1], gaps[4]]  # by start, end, reason
    assert await store.gaps("TEST:BTCUSD", T0 + 1_999, T0 + 5_001) == [gaps[0], gaps[2], gaps[1]]
    # half open on both sides: a range ending at a gap's start, or starting at its end, misses it
    assert await store.gaps("TEST:BTCUSD", T0 + 2_000, T0 + 5_000) == []
    assert await store.gaps("TEST:BTCUSD", T0 + 6_000, T0 + 7_000) == [gaps[2], gaps[1]]
    assert await store.gaps("TEST:ETHUSD", 0, FOREVER) == [gaps[3]]
    assert await store.gaps("TEST:NONE", 0, FOREVER) == []


async def test_a_feed_gap_written_twice_is_stored_once(store: MarketDataStore) -> None:
    down = gap(1_000, 2_000)
    first = await store.write(gaps=[down, down])
    again = await store.write(gaps=[down, gap(3_000, 4_000)])
    assert (first.gaps_written, first.gaps_duplicate) == (1, 1)
    assert (again.gaps_written, again.gaps_duplicate) == (1, 1)
    assert await store.gaps("TEST:BTCUSD", 0, FOREVER) == [down, gap(3_000, 4_000)]
    # the first write of a gap is kept: the same gap told again with another detail is a repeat
    await store.write(gaps=[msgspec.structs.replace(down, detail="again", ts_recv=T0 + 10**9)])
    assert (await store.gaps("TEST:BTCUSD", 0, FOREVER))[0] == down


async def test_feed_gaps_are_replayed_with_their_offsets_and_skipped_whole(
    store: MarketDataStore,
) -> None:
    offsets = {("md.ticks", 0): 7}
    await store.write([batch(tick(1, 0))], gaps=[gap(10, 20)], offsets=offsets, group="writer")
    replay = await store.write(
        [batch(tick(1, 0))], gaps=[gap(10, 20), gap(30, 40)], offsets=offsets, group="writer"
    )
    assert replay.replayed
    assert replay.gaps_written == 0
    assert await store.gaps("TEST:BTCUSD", 0, FOREVER) == [gap(10, 20)]
    assert await store.stored_offsets("writer") == offsets


async def test_an_instrument_with_a_feed_gap_is_listed(store: MarketDataStore) -> None:
    await store.write(gaps=[gap(0, 10, instrument="TEST:GAPONLY")])
    assert await store.instruments() == ["TEST:GAPONLY"]


# -- rejections, offsets, instruments -------------------------------------------------------


async def test_rejected_ticks_are_stored_with_their_reason(store: MarketDataStore) -> None:
    late = RejectedTick(tick(42, 0), RejectReason.LATE_BEYOND_HORIZON, "2h behind the clock")
    report = await store.write(rejects=[late])
    (stored,) = await store.rejections()
    assert report.rejects_written == 1
    assert (stored.instrument, stored.trade_id, stored.reason, stored.detail) == (
        "TEST:BTCUSD",
        42,
        "late_beyond_horizon",
        "2h behind the clock",
    )
    assert stored.payload is not None
    assert '"trade_id":42' in stored.payload
    assert stored.rejected_at is not None


async def test_a_repeated_rejection_of_a_known_trade_is_stored_once(
    store: MarketDataStore,
) -> None:
    late = RejectedTick(tick(42, 0), RejectReason.LATE_BEYOND_HORIZON, "late")
    await store.write(rejects=[late])
    again = await store.write(rejects=[late])
    assert again.rejects_written == 0
    assert len(await store.rejections("TEST:BTCUSD")) == 1


async def test_rejections_without_a_trade_id_are_all_kept(store: MarketDataStore) -> None:
    bad = Rejection(reason="bad_row", detail="price: not a number", payload="x,1,abc")
    await store.write(rejects=[bad, bad])
    stored = await store.rejections()
    assert [(r.reason, r.payload, r.instrument) for r in stored] == [
        ("bad_row", "x,1,abc", None),
        ("bad_row", "x,1,abc", None),
    ]
    assert await store.rejections("TEST:BTCUSD") == []


async def test_control_characters_of_a_rejection_are_stored_escaped(
    store: MarketDataStore,
) -> None:
    """PostgreSQL refuses NUL in text: every store keeps the same escaped text."""
    bad = Rejection(reason="bad_row", detail="price '9\x0042.5'\n", payload="2,9\x0042.5\x7f")
    await store.write(rejects=[bad])
    (stored,) = await store.rejections()
    assert (stored.detail, stored.payload) == (r"price '9\x0042.5'\x0a", r"2,9\x0042.5\x7f")


async def test_offsets_are_stored_with_the_write(store: MarketDataStore) -> None:
    assert await store.stored_offsets("writer") == {}
    await store.write([batch(tick(1, 0))], offsets={("md.ticks", 0): 5}, group="writer")
    await store.write(candles=[candle(0)], offsets={("md.candles", 1): 3}, group="writer")
    assert await store.stored_offsets("writer") == {("md.ticks", 0): 5, ("md.candles", 1): 3}
    assert await store.stored_offsets("another") == {}


async def test_a_write_whose_offsets_are_stored_already_is_skipped(
    store: MarketDataStore,
) -> None:
    await store.write([batch(tick(1, 0))], offsets={("md.ticks", 0): 5}, group="writer")
    bad = Rejection(reason="bad_row", payload="?")
    replay = await store.write(
        [batch(tick(2, 1))], rejects=[bad], offsets={("md.ticks", 0): 5}, group="writer"
    )
    assert replay.replayed
    assert len(await store.ticks("TEST:BTCUSD", 0, FOREVER)) == 1
    assert await store.rejections() == []


async def test_offsets_never_move_back(store: MarketDataStore) -> None:
    offsets = {("md.ticks", 0): 9, ("md.ticks", 1): 2}
    await store.write(offsets=offsets, group="writer")
    report = await store.write(offsets={("md.ticks", 0): 4, ("md.ticks", 1): 3}, group="writer")
    assert not report.replayed
    assert await store.stored_offsets("writer") == {("md.ticks", 0): 9, ("md.ticks", 1): 3}


async def test_offsets_without_a_group_are_refused(store: MarketDataStore) -> None:
    with pytest.raises(ValueError, match="group"):
        await store.write(offsets={("md.ticks", 0): 1})


async def test_instruments_lists_every_instrument_written_once(store: MarketDataStore) -> None:
    await store.write([batch(tick(1, 0, instrument="TEST:ETHUSD"))])
    await store.write([batch(tick(2, 1))], candles=[candle(0, instrument="TEST:SOLUSD")])
    await store.write([batch(tick(3, 2))])
    assert await store.instruments() == ["TEST:BTCUSD", "TEST:ETHUSD", "TEST:SOLUSD"]
