"""The entry point: format detection, dispatch and the file-level errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.files import MAX_KEPT_BAD_ROWS, BadRow, ReadReport, TickFileError
from ingest.files.detect import detect_format, format_names
from ingest.files.reader import read_ticks

BINANCE_ROW = "1,87648.21,0.08185,1,1,1767225600039409,True,True\n"
GENERIC = "instrument,trade_id,price,size,side,ts_event\nA:B,1,1.5,2,buy,1767225600000000000\n"


def test_real_files_are_detected(shared_data: Path) -> None:
    binance = (
        shared_data / "binance-btcusdt-2026-01-01" / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"
    )
    assert detect_format(binance) == "binance-aggtrades"
    assert (
        detect_format(shared_data / "kraken-xbtusdt-2025-11-10" / "trades.json") == "kraken-trades"
    )


def test_each_kind_is_detected_from_name_and_content(tmp_path: Path) -> None:
    binance = tmp_path / "BTCUSDT-aggTrades-2026-01-01.csv"
    binance.write_text(BINANCE_ROW)
    with_header = tmp_path / "header.csv"
    with_header.write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
        "transact_time,is_buyer_maker,is_best_match\n" + BINANCE_ROW
    )
    zipped = tmp_path / "BTCUSDT-aggTrades-2026-01-01.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("BTCUSDT-aggTrades-2026-01-01.csv", BINANCE_ROW)
    generic = tmp_path / "ticks.csv"
    generic.write_text(GENERIC)
    kraken = tmp_path / "trades.json"
    kraken.write_text('{"error":[],"result":{"XBTUSDT":[]}}')
    parquet = tmp_path / "ticks.parquet"
    pq.write_table(pa.table({"instrument": ["A:B"]}), parquet)
    assert [detect_format(p) for p in (binance, with_header, zipped, generic, kraken, parquet)] == [
        "binance-aggtrades",
        "binance-aggtrades",
        "binance-aggtrades",
        "csv",
        "kraken-trades",
        "parquet",
    ]
    assert set(format_names()) == {"binance-aggtrades", "kraken-trades", "csv", "parquet"}


@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.csv", "a,b,c\n1,2,3\n"), ("other.json", '["x"]'), ("data.bin", "\x00\x01")],
)
def test_an_unclear_format_is_a_value_error(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=r"cannot tell the format|not a Kraken"):
        detect_format(path)


def test_read_ticks_detects_and_dispatches(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(GENERIC)
    report = ReadReport()
    (batch,) = read_ticks(path, report=report)
    assert batch.instrument == "A:B"
    assert report.ticks == 1


def test_read_ticks_takes_an_explicit_format_and_instrument(tmp_path: Path) -> None:
    path = tmp_path / "whatever.txt"
    path.write_text(BINANCE_ROW)
    (batch,) = read_ticks(path, format="binance-aggtrades", instrument="BINANCE:ETHUSDT")
    assert batch.instrument == "BINANCE:ETHUSDT"


def test_file_level_problems_raise_tick_file_error_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(TickFileError, match="no such file"):
        read_ticks(tmp_path / "absent.csv")
    path = tmp_path / "ticks.csv"
    path.write_text(GENERIC)
    with pytest.raises(TickFileError, match="unknown format 'xml'"):
        read_ticks(path, format="xml")
    with pytest.raises(TickFileError, match="VENUE:SYMBOL"):
        read_ticks(path, instrument="lower:case")


def test_a_bad_row_listener_hears_every_bad_row_past_the_kept_ones(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    bad_rows = MAX_KEPT_BAD_ROWS + 5
    path.write_text(GENERIC + "A:B,2,oops,1,buy,1767225600000000001\n" * bad_rows)
    heard: list[BadRow] = []
    report = ReadReport(on_bad=heard.append)
    assert sum(len(batch) for batch in read_ticks(path, report=report)) == 1
    assert len(heard) == report.bad == bad_rows
    assert len(report.bad_rows) == MAX_KEPT_BAD_ROWS
    assert heard[0].line == 3
    assert "price" in heard[-1].reason
