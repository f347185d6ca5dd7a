"""Binance aggTrades CSV: real dump, both timestamp units, header or not, bad rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from core.ticks import Side, TickBatch
from ingest.files import ReadReport, TickFileError
from ingest.venues.binance import instrument_from_name, read_binance_aggtrades

HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
    "is_buyer_maker,is_best_match\n"
)
GOOD_US = "3800397495,87648.21000000,0.08185000,5723703861,5723703861,1767225600039409,True,True\n"
GOOD_MS = "26129,0.01633102,4.70443515,27781,27781,1498793709153,True,True\n"


def read(path: Path, **kwargs: object) -> tuple[list[TickBatch], ReadReport]:
    report = ReadReport()
    batches = list(read_binance_aggtrades(path, report=report, **kwargs))  # type: ignore[arg-type]
    return batches, report


def test_real_dump_gives_5000_ticks_with_microseconds_converted(shared_data: Path) -> None:
    path = shared_data / "binance-btcusdt-2026-01-01" / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"
    batches, report = read(path)
    assert (report.rows, report.ticks, report.bad) == (5000, 5000, 0)
    assert [b.instrument for b in batches] == ["BINANCE:BTCUSDT"]
    batch = batches[0]
    assert (batch.price_scale, batch.size_scale) == (2, 5)
    first, last = batch.tick(0), batch.tick(len(batch) - 1)
    assert first.ts_event == 1767225600039409000 == first.ts_recv
    assert first.price == Decimal("87648.21")
    assert first.size == Decimal("0.08185")
    assert first.side is Side.SELL
    assert first.trade_id == 3800397495
    assert last.trade_id == 3800402494
    assert last.ts_event == 1767226339347397000
    rows = path.read_text().splitlines()
    expected_trades = [int(r.split(",")[4]) - int(r.split(",")[3]) + 1 for r in rows]
    assert batch.trades.tolist() == expected_trades
    assert max(expected_trades) > 1


def test_real_dump_in_small_chunks_gives_the_same_ticks(shared_data: Path) -> None:
    path = shared_data / "binance-btcusdt-2026-01-01" / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"
    whole, _ = read(path)
    chunks, report = read(path, chunk_rows=777)
    assert all(len(b) <= 777 for b in chunks)
    assert len(chunks) == 7
    assert [t for b in chunks for t in b.ticks()] == whole[0].ticks()
    assert report.ticks == 5000


def test_millisecond_timestamps_and_header_row_are_handled(tmp_path: Path) -> None:
    path = tmp_path / "ETHBTC-aggTrades-2017-07-01.csv"
    path.write_text(HEADER + GOOD_MS + GOOD_US)
    (batch,), report = read(path)
    assert report.rows == 2
    assert report.ok
    assert batch.instrument == "BINANCE:ETHBTC"
    assert batch.ts_event.tolist() == [1498793709153000000, 1767225600039409000]
    assert (batch.price_scale, batch.size_scale) == (8, 8)
    assert batch.tick(0).price == Decimal("0.01633102")


def test_is_buyer_maker_false_means_the_aggressor_bought(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2026-01-01.csv"
    path.write_text(
        "1,10.5,1,7,9,1767225600000000,false,true\n2,10.5,1,10,10,1767225600000001,TRUE,true\n"
    )
    (batch,), _ = read(path)
    assert batch.side.tolist() == [Side.BUY, Side.SELL]
    assert batch.trades.tolist() == [3, 1]


def test_bad_rows_are_reported_with_line_and_field_and_reading_goes_on(tmp_path: Path) -> None:
    rows = [
        GOOD_US,
        "2,87x48.2,0.1,1,1,1767225600039409,True,True\n",  # line 2: price text
        "3,87648.2,-0.1,1,1,1767225600039409,True,True\n",  # line 3: negative size
        "4,87648.2,0.1,1,1,1767225600039409,True\n",  # line 4: 7 fields is fine (futures)
        "5,87648.2,0.1,1,1,1767225600039409\n",  # line 5: a column missing
        "6,87648.2,0.1,1,1,17672256000394090,True,True\n",  # line 6: timestamp too large
        "7,87648.2,0.1,1,1,yesterday,True,True\n",  # line 7: timestamp text
        "8,87648.2,0.1,1,1,1767225600039409,maybe,True\n",  # line 8: side
        "9,87648.2,0.1,5,3,1767225600039409,True,True\n",  # line 9: first > last
        "\n",  # line 10: blank, no row
        "11,0,0.1,1,1,1767225600039409,True,True\n",  # line 11: zero price
        "12,1.0000000000000000001,0.1,1,1,1767225600039409,True,True\n",  # line 12: 19 places
        "13,99999999999999999999,0.1,1,1,1767225600039409,True,True\n",  # line 13: too big
        "-14,1,0.1,1,1,1767225600039409,True,True\n",  # line 14: negative id
        GOOD_US,
    ]
    path = tmp_path / "BTCUSDT-aggTrades-2026-01-01.csv"
    path.write_text("".join(rows))
    (batch,), report = read(path)
    assert (report.rows, report.ticks, report.bad) == (14, 3, 11)
    assert len(batch) == 3
    assert batch.trade_id.tolist() == [3800397495, 4, 3800397495]
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert sorted(reasons) == [2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 14]
    assert reasons[2] == "price '87x48.2' is not a decimal number"
    assert reasons[3] == "quantity -0.1 is not positive"
    assert reasons[5] == "expected 8 fields, got 6"
    assert reasons[6] == (
        "transact_time 17672256000394090 is too large for milliseconds or microseconds"
    )
    assert reasons[7] == "transact_time 'yesterday' is not a non-negative integer"
    assert reasons[8] == "is_buyer_maker 'maybe' is not one of true, false"
    assert reasons[9] == "first_trade_id 5 is after last_trade_id 3"
    assert reasons[11] == "price 0 is not positive"
    assert "more than 18 decimal places" in reasons[12]
    assert reasons[13] == "price 99999999999999999999 does not fit 64 bits"
    assert reasons[14] == "agg_trade_id '-14' is not a non-negative integer"
    assert all(bad.source == path.name for bad in report.bad_rows)


def test_a_row_with_several_bad_fields_names_them_all(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2026-01-01.csv"
    path.write_text("x,y,z,1,1,1767225600039409,True,True\n")
    batches, report = read(path)
    assert batches == []
    assert report.bad == 1
    assert report.bad_rows[0].reason == (
        "agg_trade_id 'x' is not a non-negative integer; price 'y' is not a decimal number; "
        "quantity 'z' is not a decimal number"
    )


def test_instrument_comes_from_the_parameter_or_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(GOOD_US)
    with pytest.raises(TickFileError, match="cannot tell the instrument"):
        read(path)
    (batch,), _ = read(path, instrument="BINANCE:BTCUSDT")
    assert batch.instrument == "BINANCE:BTCUSDT"
    assert instrument_from_name(Path("btcusdt-aggTrades-2026-01-01.zip")) == "BINANCE:BTCUSDT"


def test_a_zipped_daily_dump_is_read_like_its_csv(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "BTCUSDT-aggTrades-2026-01-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-aggTrades-2026-01-01.csv", GOOD_US * 3)
    (batch,), report = read(path)
    assert report.ticks == 3
    assert batch.instrument == "BINANCE:BTCUSDT"


def test_batches_hold_plain_int64_columns(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-aggTrades-2026-01-01.csv"
    path.write_text(GOOD_US * 2)
    (batch,), _ = read(path)
    assert batch.price.dtype == np.int64
    assert batch.side.dtype == np.int8
    assert batch.price.tolist() == [8764821, 8764821]
