"""Alert semantics on Kraken's real XBTUSDT trades of 2025-11-10 (``../shared/data``): a table
of alerts, each with the exact trades at which it must fire.

Each expectation is computed here from the raw file by a plain scan (every trade, in file
order, the file's own decimal strings), apart from the evaluator, and a few are also pinned
as literal trade ids read off ``trades.json`` by hand:

- 10218208 (105433.6) is the first trade: an ``above 105433.6`` fires on it (at, not above);
- 10218210 (105383.8) is the first at or below 105400 after 10218209 (105410.1);
- 10218290 is a trade at exactly 105800.0 after 10218289 below it: a cross-up 105800 fires
  on the trade that reaches the threshold;
- 105700 is crossed upwards five times: 10218260, 10218267, 10218287, 10218546, 10218591;
  with a 600 s cool-down, 10218267 (103 s after) and 10218287 (402 s after) do not fire;
- 10218260 (105708.0) is 0.31% above 10218233 (105380.7, 515 s before): a 0.3% rise in 600 s;
- 10218502 (105669.2) is 0.204% below 10218494 (105884.8, 197 s before): a 0.2% fall in 300 s;
- the longest pause in the file is 453 s between 10218404 (105717.2) and 10218405 (106024.0):
  declared as a feed gap, a cross-up 106000 set just before it fires on 10218405, flagged.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from core.alerts import AlertFired, AlertSpec, Arming, Condition, Source
from core.candles import Candle, CandleStatus
from core.gaps import FeedGap, GapReason
from core.intervals import Interval
from core.numbers import scale_of, to_raw
from core.ticks import TickBatch
from ingest.files.reader import read_ticks
from main_api.alerts import AlertEvaluator

D = Decimal
PAIR = "KRAKEN:XBTUSDT"
MINUTE = Interval.parse("1m")
SECOND = 1_000_000_000


class Trade:
    __slots__ = ("price", "trade_id", "ts")

    def __init__(self, trade_id: int, price: Decimal, ts: int) -> None:
        self.trade_id, self.price, self.ts = trade_id, price, ts


@pytest.fixture(scope="module")
def folder(shared_data: Path) -> Path:
    return shared_data / "kraken-xbtusdt-2025-11-10"


@pytest.fixture(scope="module")
def batch(folder: Path) -> TickBatch:
    (only,) = list(read_ticks(folder / "trades.json"))
    return only


@pytest.fixture(scope="module")
def trades(folder: Path, batch: TickBatch) -> list[Trade]:
    """The raw rows of the file: price as its own decimal string (times from the reader)."""
    rows = json.loads((folder / "trades.json").read_text())["result"]["XBTUSDT"]
    ts = dict(zip(batch.trade_id.tolist(), batch.ts_event.tolist(), strict=True))
    return [Trade(row[6], D(row[0]), ts[row[6]]) for row in rows]


def spec(alert_id: str, condition: str, threshold: str, **fields: object) -> AlertSpec:
    return AlertSpec(
        alert_id=alert_id,
        account=1,
        instrument=PAIR,
        condition=Condition(condition),
        threshold=D(threshold),
        **fields,  # type: ignore[arg-type]
    )


# ---- the scans: each decides from the trades alone when an alert fires

Scan = Callable[[list[Trade]], list[int]]


def first(pred: Callable[[Decimal | None, Decimal], bool]) -> Scan:
    """The first trade where ``pred(previous price, price)`` holds (a once alert)."""

    def scan(trades: list[Trade]) -> list[int]:
        previous = None
        for trade in trades:
            if pred(previous, trade.price):
                return [trade.trade_id]
            previous = trade.price
        return []

    return scan


def every_cross_up(threshold: Decimal, cooldown_s: int) -> Scan:
    """Every upward crossing of ``threshold`` at least ``cooldown_s`` after the last firing."""

    def scan(trades: list[Trade]) -> list[int]:
        fired: list[int] = []
        last_fire = None
        for before, trade in itertools.pairwise(trades):
            cool = last_fire is None or trade.ts >= last_fire + cooldown_s * SECOND
            if before.price < threshold <= trade.price and cool:
                fired.append(trade.trade_id)
                last_fire = trade.ts
        return fired

    return scan


def first_rise(percent: Decimal, window_s: int) -> Scan:
    """The first trade at least ``percent`` above the lowest of the trades of the last
    ``window_s`` seconds (itself included)."""

    def scan(trades: list[Trade]) -> list[int]:
        for i, trade in enumerate(trades):
            low = min(t.price for t in trades[: i + 1] if t.ts >= trade.ts - window_s * SECOND)
            if (trade.price - low) * 100 >= percent * low:
                return [trade.trade_id]
        return []

    return scan


def first_fall(percent: Decimal, window_s: int) -> Scan:
    def scan(trades: list[Trade]) -> list[int]:
        for i, trade in enumerate(trades):
            high = max(t.price for t in trades[: i + 1] if t.ts >= trade.ts - window_s * SECOND)
            if (high - trade.price) * 100 >= percent * high:
                return [trade.trade_id]
        return []

    return scan


# (alert, scan, trade ids pinned by hand or None)
TABLE: list[tuple[AlertSpec, Scan, list[int] | None]] = [
    (spec("at-first", "above", "105433.6"), first(lambda _, p: p >= D("105433.6")), [10218208]),
    (
        spec("down-105400", "cross-down", "105400"),
        first(lambda b, p: b is not None and b > D("105400") >= p),
        [10218210],
    ),
    (spec("low", "below", "105360"), first(lambda _, p: p <= D("105360")), [10218213]),
    (
        spec("up-105800", "cross-up", "105800"),
        first(lambda b, p: b is not None and b < D("105800") <= p),
        [10218290],
    ),
    (
        spec("up-106000", "cross-up", "106000"),
        first(lambda b, p: b is not None and b < D("106000") <= p),
        [10218332],
    ),
    (spec("high", "above", "106200"), first(lambda _, p: p >= D("106200")), [10218634]),
    (spec("never", "above", "106282.6"), first(lambda _, p: p >= D("106282.6")), []),
    (
        spec("each-105700", "cross-up", "105700", arming=Arming.REARM),
        every_cross_up(D("105700"), 0),
        [10218260, 10218267, 10218287, 10218546, 10218591],
    ),
    (
        spec("cool-105700", "cross-up", "105700", arming=Arming.REARM, cooldown_s=600),
        every_cross_up(D("105700"), 600),
        [10218260, 10218546, 10218591],
    ),
    (spec("rise", "move-up", "0.3", window_s=600), first_rise(D("0.3"), 600), [10218260]),
    (spec("fall", "move-down", "0.2", window_s=300), first_fall(D("0.2"), 300), [10218502]),
]


def fired_ids(events: list[AlertFired]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {alert.alert_id: [] for alert, _, _ in TABLE}
    for event in events:
        assert event.trade_id is not None
        out[event.alert_id].append(event.trade_id)
    return out


def test_each_alert_fires_on_the_trades_the_scan_finds(
    batch: TickBatch, trades: list[Trade]
) -> None:
    evaluator = AlertEvaluator()
    evaluator.apply_changes([alert for alert, _, _ in TABLE])
    events = evaluator.step(batch)
    got = fired_ids(events)
    for alert, scan, pinned in TABLE:
        expected = scan(trades)
        assert got[alert.alert_id] == expected, alert.alert_id
        if pinned is not None:
            assert expected == pinned, alert.alert_id
    assert [e.fire_id for e in events if e.alert_id == "each-105700"] == [
        f"each-105700:{n}" for n in range(1, 6)
    ]
    assert not any(event.gap for event in events)
    # The exact price of the trade, in the file's own digits.
    by_id = {trade.trade_id: trade.price for trade in trades}
    assert all(event.price == by_id[event.trade_id or 0] for event in events)


def test_the_same_alerts_in_small_batches_fire_the_same(batch: TickBatch) -> None:
    whole = AlertEvaluator()
    whole.apply_changes([alert for alert, _, _ in TABLE])
    expected = whole.step(batch)
    pieces = AlertEvaluator()
    pieces.apply_changes([alert for alert, _, _ in TABLE])
    got = [
        e
        for start in range(0, len(batch), 7)
        for e in pieces.step(batch.take(slice(start, start + 7)))
    ]
    assert got == expected


def test_a_crossing_over_the_longest_pause_declared_as_a_gap_is_flagged(
    batch: TickBatch, trades: list[Trade]
) -> None:
    ids = batch.trade_id.tolist()
    cut = ids.index(10218405)
    before, after = trades[cut - 1], trades[cut]
    assert (before.trade_id, before.price, after.price) == (10218404, D("105717.2"), D("106024.0"))
    evaluator = AlertEvaluator()
    assert evaluator.step(batch.take(slice(0, cut))) == []
    evaluator.apply_changes([spec("over-gap", "cross-up", "106000")])
    evaluator.step(
        FeedGap(
            instrument=PAIR,
            start_ns=before.ts,
            end_ns=after.ts + 1,
            reason=GapReason.DISCONNECTED,
            detail="453 s without trades, declared for the test",
        )
    )
    events = evaluator.step(batch.take(slice(cut, None)))
    assert [(e.fire_id, e.trade_id, e.price, e.gap) for e in events] == [
        ("over-gap:1", 10218405, D("106024.0"), True)
    ]


# ---- Kraken's official 1-minute candles


@pytest.fixture(scope="module")
def ohlc(folder: Path) -> list[list[object]]:
    rows: list[list[object]] = json.loads((folder / "ohlc-1m.json").read_text())["result"][
        "XBTUSDT"
    ]
    return rows


@pytest.fixture(scope="module")
def candles(ohlc: list[list[object]]) -> list[Candle]:
    return [official(row) for row in ohlc]


def official(row: list[object], close: str | None = None, revision: int = 0) -> Candle:
    """A closed candle from a row ``[time, open, high, low, close, vwap, volume, count]``;
    ``close`` and ``revision`` make a revised version of it."""
    prices = [D(str(v)) for v in row[1:5]]
    if close is not None:
        prices[3] = D(close)
        prices[1] = max(prices[1], prices[3])
        prices[2] = min(prices[2], prices[3])
    volume = D(str(row[6]))
    scale = max(scale_of(p) for p in prices)
    size_scale = scale_of(volume)
    o, h, lo, c = (to_raw(p, scale) for p in prices)
    return Candle(
        PAIR,
        MINUTE,
        int(str(row[0])) * SECOND,
        scale,
        size_scale,
        o,
        h,
        lo,
        c,
        to_raw(volume, size_scale),
        0,
        0,
        int(str(row[7])),
        None,
        None,
        revision,
        CandleStatus.REVISED if revision else CandleStatus.CLOSED,
    )


def candle_spec(alert_id: str, threshold: str) -> AlertSpec:
    return spec(alert_id, "cross-up", threshold, source=Source.CANDLES, interval="1m")


def test_a_candle_alert_fires_on_the_first_close_that_crosses(candles: list[Candle]) -> None:
    evaluator = AlertEvaluator()
    evaluator.apply_changes([candle_spec("c", "105800")])
    events = [event for c in candles for event in evaluator.step(c)]
    closes = [c.close for c in candles]
    crossing = next(i for i in range(1, len(closes)) if closes[i - 1] < D("105800") <= closes[i])
    assert crossing == 21  # the 17:45 candle: 105668.6 then 105835.8
    assert [(e.candle_open_time, e.price) for e in events] == [
        (candles[21].open_time, D("105835.8"))
    ]


def test_a_revised_candle_fires_only_if_it_crosses(
    ohlc: list[list[object]], candles: list[Candle]
) -> None:
    evaluator = AlertEvaluator()
    evaluator.apply_changes([candle_spec("c", "105800")])
    for c in candles[:21]:
        assert evaluator.step(c) == []
    # The 17:44 candle (close 105668.6) revised to 105799.9: closer, still below: nothing.
    assert evaluator.step(official(ohlc[20], close="105799.9", revision=1)) == []
    # Revised again to 105800.0: it crosses from the close it revises, so it fires.
    events = evaluator.step(official(ohlc[20], close="105800.0", revision=2))
    assert [(e.fire_id, e.candle_open_time, e.price) for e in events] == [
        ("c:1", candles[20].open_time, D("105800.0"))
    ]
    # The 17:45 candle then fires nothing more: a once alert, fired.
    assert evaluator.step(candles[21]) == []
