"""Candles and ticks from the real engine, for the gateway tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from core.candles import Candle
from core.engine import CandleEngine, EngineConfig
from core.gaps import FeedGap, GapReason
from core.intervals import parse_intervals
from core.ticks import TickBatch
from ingest.synthetic import DEFAULT_START_NS, SyntheticFeed

BTC = "SYNTH:BTCUSD"
ETH = "SYNTH:ETHUSD"


def small_batches(
    instruments: tuple[str, ...] = (BTC,),
    rate: float = 20.0,
    duration: float = 30.0,
    rows: int = 4,
    start_ns: int = DEFAULT_START_NS,
) -> list[TickBatch]:
    """Synthetic tick batches of a few rows each (so that the engine emits many updates)."""
    feed = SyntheticFeed(
        instruments=instruments, rate=rate, duration=duration, batch_size=rows, start_ns=start_ns
    )
    return list(feed.batches())


def engine_candles(
    batches: list[TickBatch], intervals: tuple[str, ...] = ("1s", "1m")
) -> list[Candle]:
    """Every candle update the engine emits for ``batches`` (open updates unthrottled), then
    the closes of a final flush."""
    engine = CandleEngine(EngineConfig(intervals=parse_intervals(list(intervals)), throttle_ns=0))
    out: list[Candle] = []
    for batch in batches:
        out.extend(engine.feed(batch).candles)
    out.extend(engine.flush().candles)
    return out


def series(candles: list[Candle], instrument: str, label: str) -> list[Candle]:
    return [c for c in candles if c.instrument == instrument and c.interval.label == label]


def updates(
    instrument: str = BTC,
    label: str = "1s",
    duration: float = 30.0,
    rate: float = 20.0,
    start_ns: int = DEFAULT_START_NS,
) -> list[Candle]:
    """The update stream of one candle channel, from synthetic ticks through the engine."""
    batches = small_batches((instrument,), rate, duration, start_ns=start_ns)
    return series(engine_candles(batches), instrument, label)


def final(candles: list[Candle]) -> dict[int, Candle]:
    """Each candle's newest version by open time."""
    latest: dict[int, Candle] = {}
    for candle in candles:
        known = latest.get(candle.open_time)
        if known is None or known.revision < candle.revision:
            latest[candle.open_time] = candle
    return latest


def chunks(items: list[Candle], size: int) -> Iterator[list[Candle]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class GappedStream:
    """One candle channel's updates around a feed gap, from the real engine."""

    gap: FeedGap
    before: list[Candle]
    """The updates before the gap was marked."""
    after: list[Candle]
    """From the gap on: the engine's re-emission of the candles it flagged, then the rest."""


def gapped_updates(
    instrument: str = BTC, label: str = "1s", duration: float = 30.0, missing: int = 10
) -> GappedStream:
    """Synthetic ticks with ``missing`` batches cut out half way, as a feed that was down
    would have them, and the feed gap its connector would mark: from the last trade before
    the hole to the first one after it, both included (``core.gaps.FeedGap``)."""
    batches = small_batches((instrument,), duration=duration)
    cut = len(batches) // 2
    kept, resumed = batches[:cut], batches[cut + missing :]
    gap = FeedGap(
        instrument=instrument,
        start_ns=int(kept[-1].ts_event[-1]),
        end_ns=int(resumed[0].ts_event[0]) + 1,
        reason=GapReason.DISCONNECTED,
        detail=f"{missing} batches lost",
        ts_recv=int(resumed[0].ts_recv[0]),
    )
    engine = CandleEngine(EngineConfig(intervals=parse_intervals([label]), throttle_ns=0))
    before = [candle for batch in kept for candle in engine.feed(batch).candles]
    after = list(engine.mark_gap(gap).candles)
    for batch in resumed:
        after.extend(engine.feed(batch).candles)
    after.extend(engine.flush().candles)
    return GappedStream(gap, series(before, instrument, label), series(after, instrument, label))
