"""Roll-up on read equals the engine's own candles of that interval, on real venue data.

The engine runs over Binance aggTrades (empty minutes skipped) and Kraken trades (empty
minutes filled, Kraken's convention, so flat candles take part); only its 1m candles are
stored; the API's 5m, 30m and 2h, rolled up from them, must equal the engine's 5m, 30m, 2h.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.candles import Candle
from core.engine import CandleEngine, EmptyPolicy, EngineConfig
from core.intervals import parse_intervals
from ingest.files.reader import read_ticks
from storage import PostgresStore
from tests.charting.conftest import MakeClient
from tests.charting.data import MINUTE, from_arrow, from_json, normal

ROLLED = ("5m", "30m", "2h")
FILES = {
    "binance": ("binance-btcusdt-2026-01-01/BTCUSDT-aggTrades-2026-01-01.head5000.csv", "skip"),
    "kraken": ("kraken-xbtusdt-2025-11-10/trades.json", "fill"),
}


def engine_candles(path: Path, empty: str) -> dict[str, list[Candle]]:
    """The engine's final candles of the file, by interval label, sorted by open time."""
    config = EngineConfig(
        intervals=parse_intervals(["1m", *ROLLED]), empty=EmptyPolicy(empty), emit_open=False
    )
    engine = CandleEngine(config)
    final: dict[tuple[str, str, int], Candle] = {}
    for batch in read_ticks(path, chunk_rows=700):
        final.update((c.key, c) for c in engine.feed(batch).candles)
    final.update((c.key, c) for c in engine.flush().candles)
    by_interval: dict[str, list[Candle]] = {}
    for candle in sorted(final.values(), key=lambda c: c.open_time):
        by_interval.setdefault(candle.interval.label, []).append(candle)
    return by_interval


@pytest.mark.parametrize("venue", sorted(FILES))
async def test_rolled_up_candles_equal_the_engines(
    shared_data: Path, store: PostgresStore, make_client: MakeClient, venue: str
) -> None:
    name, empty = FILES[venue]
    built = engine_candles(shared_data / name, empty)
    minutes = built["1m"]
    assert len(minutes) > 10
    if empty == "fill":
        assert any(c.trades == 0 for c in minutes), "the Kraken data has empty minutes"
    await store.write(candles=minutes)
    client = make_client(intervals=(MINUTE,), chunk_rows=17)
    instrument = minutes[0].instrument
    for label in ROLLED:
        expected = [normal(c)[:-2] for c in built[label]]  # all but status and revision
        params = {"instrument": instrument, "interval": label, "start": "2025-01-01"}
        body = (await client.get("/v1/candles", params=params)).json()
        assert body["rolled_up_from"] == "1m"
        assert [row[:-2] for row in from_json(body)] == expected, label
        arrow = (await client.get("/v1/candles", params=params | {"format": "arrow"})).content
        assert [row[:-2] for row in from_arrow(arrow)] == expected, label
        assert {c["status"] for c in body["candles"]} == {"closed"}
