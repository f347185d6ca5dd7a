"""The venue parsing benchmark runs on a tiny input, and its contenders read the same ticks."""

from __future__ import annotations

import msgspec
import pytest

from bench import venues
from core.ticks import Tick


def test_venues_benchmark_runs_and_prints_every_schema_and_contender(
    capsys: pytest.CaptureFixture[str],
) -> None:
    venues.main(["--smoke"])
    out = capsys.readouterr().out
    for title in ("Binance aggTrade", "Binance trade", "Coinbase match", "Kraken v2 trade"):
        assert f"{title}: frames to ticks" in out
    for contender in (
        "protocol.parse (msgspec)",
        "json.loads + dict (baseline)",
        "msgspec decode only, no ticks",
    ):
        assert out.count(contender) == 4


INSTRUMENTS = {
    "Binance aggTrade": "BINANCE:BTCUSDT",
    "Binance trade": "BINANCE:BTCUSDT",
    "Coinbase match": "COINBASE:BTC-USD",
    "Kraken v2 trade": "KRAKEN:BTC/USD",
}


def expected(tick: Tick, schema: str) -> Tick:
    """What a schema's frame of ``tick`` must parse to: its venue's instrument, the receipt
    time given to ``parse``, Binance's millisecond ``T`` (floored), and one trade per message
    but for Binance aggTrade (which carries the count)."""
    binance = schema.startswith("Binance")
    return msgspec.structs.replace(
        tick,
        instrument=INSTRUMENTS[schema],
        ts_event=tick.ts_event // 1_000_000 * 1_000_000 if binance else tick.ts_event,
        ts_recv=venues.RECV,
        trades=tick.trades if schema == "Binance aggTrade" else 1,
    )


def test_every_contender_reads_the_input_ticks_back_from_the_frames() -> None:
    _, ticks = venues.input_ticks(3_000)
    ticks = ticks[:3_000]
    schemas = venues.schemas(ticks)
    assert [s.name for s in schemas] == [
        "Binance aggTrade",
        "Binance trade",
        "Coinbase match",
        "Kraken v2 trade",
    ]
    for schema in schemas:
        want = [expected(tick, schema.name) for tick in ticks]
        assert list(schema.protocol()) == want, schema.name
        assert list(schema.baseline()) == want, schema.name
        assert venues.decode_only(schema.decoder, schema.frames) == len(ticks)


def test_synthetic_ticks_make_frames_every_contender_reads_alike() -> None:
    source, ticks = venues.input_ticks(1_000, real=False)
    assert source == "synthetic"
    assert len(ticks) == 1_000
    for schema in venues.schemas(ticks[:300]):
        want = [expected(tick, schema.name) for tick in ticks[:300]]
        assert list(schema.protocol()) == list(schema.baseline()) == want
