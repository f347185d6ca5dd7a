"""Kraken REST trades JSON: the real response, exact times, bad trades, bad envelopes."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from core.ticks import Side, TickBatch
from ingest.files import ReadReport, TickFileError
from ingest.venues.kraken import read_kraken_trades
from ingest.venues.kraken.files import MAX_FILE_BYTES


def read(path: Path, **kwargs: object) -> tuple[list[TickBatch], ReadReport]:
    report = ReadReport()
    batches = list(read_kraken_trades(path, report=report, **kwargs))  # type: ignore[arg-type]
    return batches, report


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trades.json"
    path.write_text(text)
    return path


def envelope(rows: list[object], pair: str = "XBTUSDT") -> str:
    return json.dumps({"error": [], "result": {pair: rows, "last": "1"}})


def test_real_response_gives_471_ticks_with_exact_first_and_last(shared_data: Path) -> None:
    batches, report = read(shared_data / "kraken-xbtusdt-2025-11-10" / "trades.json")
    assert (report.rows, report.ticks, report.bad) == (471, 471, 0)
    ticks = [tick for batch in batches for tick in batch.ticks()]
    assert {tick.instrument for tick in ticks} == {"KRAKEN:XBTUSDT"}
    first, last = ticks[0], ticks[-1]
    assert (first.price, first.size, first.side) == (
        Decimal("105433.6"),
        Decimal("0.00027625"),
        Side.BUY,
    )
    assert first.ts_event == 1762795433971744500
    assert first.trade_id == 10218208
    assert (last.price, last.size, last.trade_id) == (
        Decimal("106110.1"),
        Decimal("0.0083"),
        10218678,
    )
    assert last.ts_event == 1762807789480180700
    assert [t.trade_id for t in ticks] == list(range(10218208, 10218679))


def test_time_is_exact_to_the_digits_written_never_through_a_float(tmp_path: Path) -> None:
    raw = '{"error":[],"result":{"XBTUSDT":[["1.5","2",1762795433.123456789,"s","l","",7]]}}'
    (batch,), _ = read(write(tmp_path, raw))
    assert batch.ts_event.tolist() == [1762795433123456789]
    assert batch.side.tolist() == [Side.SELL]


def test_bad_trades_are_reported_by_index_and_reading_goes_on(tmp_path: Path) -> None:
    good = ["100.5", "0.25", 1762795433.5, "b", "l", "", 1]
    rows: list[object] = [
        good,
        ["abc", "0.25", 1762795433.5, "b", "l", "", 2],  # 2: price text
        ["100.5", "-1", 1762795433.5, "b", "l", "", 3],  # 3: negative volume
        ["100.5", "0.25", "soon", "b", "l", "", 4],  # 4: time
        ["100.5", "0.25", 1762795433.5, "x", "l", "", 5],  # 5: side
        ["100.5", "0.25", 1762795433.5, "b", "l", ""],  # 6: no trade id
        ["100.5", "0.25", "TIME7", "b", "l", "", 7],  # 7: beyond ns (written below)
        "nonsense",  # 8: not an array
        ["100.5", "0.25", 1762795433.5, "s", "l", "", -9],  # 9: trade id
        good,
    ]
    text = envelope(rows).replace('"TIME7"', "1762795433.1234567891")
    batches, report = read(write(tmp_path, text))
    assert (report.rows, report.ticks, report.bad) == (10, 2, 8)
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert reasons == {
        2: "price 'abc' is not a decimal number",
        3: "volume -1 is not positive",
        4: "time 'soon' is not a number",
        5: "side 'x' is not b or s",
        6: "expected 7 fields, got 6",
        7: "time 1762795433.1234567891 has more than 9 decimal places",
        8: "trade is a str, not an array",
        9: "trade_id -9 is not a non-negative 64-bit integer",
    }
    assert sum(len(b) for b in batches) == 2


def test_numbers_written_as_json_numbers_stay_exact(tmp_path: Path) -> None:
    raw = '{"error":[],"result":{"XBTUSDT":[[105433.60, 1E-7, 1762795433, "b", "l", "", 1]]}}'
    (batch,), report = read(write(tmp_path, raw))
    assert report.ok
    tick = batch.tick(0)
    assert (tick.price, tick.size) == (Decimal("105433.6"), Decimal("1E-7"))


def test_an_error_list_from_kraken_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, '{"error":["EQuery:Unknown asset pair"]}')
    with pytest.raises(TickFileError, match="EQuery:Unknown asset pair"):
        read(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "not a Kraken response"),
        ('{"error": [], "result": {"last": "1"}}', "holds no pair"),
        ('{"error": [], "result": {"XBTUSDT": 5}}', "not an array"),
        ("{not json", "not readable JSON"),
    ],
)
def test_an_unreadable_envelope_is_a_file_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TickFileError, match=message):
        read(write(tmp_path, text))


def test_chunks_split_the_trades_and_the_instrument_can_be_named(tmp_path: Path) -> None:
    rows: list[object] = [["1.5", "1", 1762795433 + i, "b", "l", "", i] for i in range(5)]
    batches, report = read(
        write(tmp_path, envelope(rows)), chunk_rows=2, instrument="KRAKEN:XBT/USDT"
    )
    assert [len(b) for b in batches] == [2, 2, 1]
    assert {b.instrument for b in batches} == {"KRAKEN:XBT/USDT"}
    assert report.ticks == 5


def test_a_file_over_the_size_limit_is_refused_by_its_size_before_it_is_read(
    tmp_path: Path,
) -> None:
    """A sparse file of 1 GiB: refused at once, naming the file and the limit."""
    path = write(tmp_path, '{"error": [], "result": {"XBTUSDT": [')
    subprocess.run(["truncate", "--size=1G", str(path)], check=True)
    with pytest.raises(TickFileError) as refused:
        read(path)
    assert str(refused.value) == (
        f"trades.json: 1,073,741,824 bytes, over the {MAX_FILE_BYTES:,} bytes a Kraken trades"
        " file may have (it is read whole, at about five times its size in memory):"
        " split it into smaller responses"
    )


def test_a_file_at_the_size_limit_is_read_and_one_byte_over_it_is_not(tmp_path: Path) -> None:
    path = write(tmp_path, envelope([["100.5", "0.25", 1762795433.5, "b", "l", "", 7]]))
    size = path.stat().st_size
    batches, _ = read(path, max_bytes=size)
    assert [len(batch) for batch in batches] == [1]
    with pytest.raises(TickFileError, match=f"{size:,} bytes, over the {size - 1:,} bytes"):
        read(path, max_bytes=size - 1)
