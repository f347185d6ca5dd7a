"""Generic CSV: the documented layout, mixed instruments, both timestamp forms, bad rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.ticks import Side, TickBatch
from ingest.files import ReadReport, TickFileError, read_generic_csv

HEADER = "instrument,trade_id,price,size,side,ts_event\n"


def read(path: Path, **kwargs: object) -> tuple[list[TickBatch], ReadReport]:
    report = ReadReport()
    batches = list(read_generic_csv(path, report=report, **kwargs))  # type: ignore[arg-type]
    return batches, report


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ticks.csv"
    path.write_text(text)
    return path


def test_rows_of_mixed_instruments_give_one_batch_per_instrument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + "BINANCE:BTCUSDT,1,87648.21000,0.08185,sell,1767225600039409000\n"
        + "KRAKEN:XBTUSDT,7,105000.1,0.5,B,2026-01-01T00:00:00.5+01:00\n"
        + "BINANCE:BTCUSDT,2,87648.3,1E-7,Unknown,2026-01-01 00:00:01Z\n",
    )
    batches, report = read(path)
    assert report.ok
    assert report.ticks == 3
    by_instrument = {b.instrument: b for b in batches}
    btc = by_instrument["BINANCE:BTCUSDT"]
    assert (btc.price_scale, btc.size_scale) == (2, 7)
    assert [t.side for t in btc.ticks()] == [Side.SELL, Side.UNKNOWN]
    assert btc.tick(1).size == Decimal("1E-7")
    assert btc.ts_event.tolist() == [1767225600039409000, 1767225601000000000]
    xbt = by_instrument["KRAKEN:XBTUSDT"].tick(0)
    assert (xbt.trade_id, xbt.side, xbt.ts_event) == (7, Side.BUY, 1767222000500000000)


def test_optional_columns_default_to_ts_event_and_one_trade(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ts_recv,trades,side,ts_event,size,price,trade_id,instrument,note\n"
        + "1767225600000000009,3,s,1767225600000000000,1,2,1,A:B,hello\n"
        + ",,s,1767225600000000000,1,2,2,A:B,\n",
    )
    (batch,), report = read(path)
    assert report.ok
    assert batch.ts_recv.tolist() == [1767225600000000009, 1767225600000000000]
    assert batch.trades.tolist() == [3, 1]


def test_bad_rows_are_reported_with_line_and_field_and_reading_goes_on(tmp_path: Path) -> None:
    rows = [
        "A:B,1,1.5,2,buy,1767225600000000000",  # line 2: good
        "A:B,2,1.5.1,2,buy,1767225600000000000",  # line 3: price text
        "A:B,3,1.5,-2,buy,1767225600000000000",  # line 4: negative size
        "A:B,4,1.5,2,buy",  # line 5: a column missing
        "A:B,5,1.5,2,buy,1767225600",  # line 6: seconds, not ns
        "A:B,6,1.5,2,buy,2026-01-01T00:00:00",  # line 7: no offset
        "A:B,7,1.5,2,hold,1767225600000000000",  # line 8: side
        ",8,1.5,2,buy,1767225600000000000",  # line 9: no instrument
        "a:b,9,1.5,2,buy,1767225600000000000",  # line 10: bad instrument
        "A:B,x,1.5,2,buy,1767225600000000000",  # line 11: trade id
        "A:B,12,1.5,2,buy,2026-02-30T00:00:00Z",  # line 12: no such day
        "A:B,13,1.5,2,buy,2026-01-01T00:00:00.1234567891Z",  # line 13: beyond ns
        "A:B,14,1.5,2,sell,1767225600000000000",  # line 14: good
    ]
    batches, report = read(write(tmp_path, HEADER + "\n".join(rows) + "\n"))
    assert (report.rows, report.ticks, report.bad) == (13, 2, 11)
    assert [t.trade_id for b in batches for t in b.ticks()] == [1, 14]
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    no_iso = "is neither epoch nanoseconds nor ISO 8601 with an offset"
    assert reasons == {
        3: "price '1.5.1' is not a decimal number",
        4: "size -2 is not positive",
        5: "expected 6 fields, got 5",
        6: "ts_event 1767225600 is too small for epoch nanoseconds (seconds, ms or µs?)",
        7: f"ts_event '2026-01-01T00:00:00' {no_iso}",
        8: "side 'hold' is not one of buy, sell, b, s, unknown",
        9: "instrument is missing",
        10: "instrument 'a:b' is not VENUE:SYMBOL in upper case",
        11: "trade_id 'x' is not a non-negative integer",
        12: f"ts_event '2026-02-30T00:00:00Z' {no_iso}",
        13: f"ts_event '2026-01-01T00:00:00.1234567891Z' {no_iso}",
    }


def test_quoted_fields_and_windows_line_ends_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes(
        b'"instrument","trade_id","price","size","side","ts_event"\r\n'
        b'"A:B","1","1.50","2","buy","2026-01-01T00:00:00Z"\r\n'
    )
    (batch,), report = read(path)
    assert report.ok
    assert batch.tick(0).price == Decimal("1.5")


def test_missing_header_columns_are_a_file_error_naming_them(tmp_path: Path) -> None:
    path = write(tmp_path, "instrument,trade_id,price,side\nA:B,1,1,buy\n")
    with pytest.raises(TickFileError, match="missing columns: size, ts_event"):
        read(path)


def test_the_instrument_parameter_stands_in_for_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "trade_id,price,size,side,ts_event\n1,1,1,b,1767225600000000000\n")
    (batch,), _ = read(path, instrument="FILE:X")
    assert batch.instrument == "FILE:X"
    with pytest.raises(TickFileError, match="has an instrument column"):
        read(write(tmp_path, HEADER + "A:B,1,1,1,b,1767225600000000000\n"), instrument="FILE:X")


def test_an_empty_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(TickFileError, match="header row is required"):
        read(write(tmp_path, "\n\n"))


def test_a_batch_never_exceeds_the_chunk_rows(tmp_path: Path) -> None:
    body = "".join(f"A:B,{i},1.{i},1,b,{1767225600000000000 + i}\n" for i in range(10))
    batches, report = read(write(tmp_path, HEADER + body), chunk_rows=4)
    assert [len(b) for b in batches] == [3, 4, 3]  # the header is one of the first 4 lines
    assert report.ticks == 10
    assert [b.price_scale for b in batches] == [1, 1, 1]


def test_a_byte_order_mark_and_invalid_utf8_do_not_stop_the_read(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + HEADER.encode()
        + b"A:B,1,1,1,b,1767225600000000000\n"
        + b"A:B,2,1\xff,1,b,1767225600000000000\n"
    )
    (batch,), report = read(path)
    assert batch.trade_id.tolist() == [1]
    assert report.bad_rows[0].line == 3
    assert report.bad_rows[0].reason == "price '1\ufffd' is not a decimal number"
