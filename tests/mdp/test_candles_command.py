"""``mdp candles`` end to end: real exchange files in, exact candles out."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.present.text import CANDLE_COLUMNS, CANDLE_FIELDS
from mdp.cli import main

KRAKEN = Path("kraken-xbtusdt-2025-11-10")
BINANCE = Path("binance-btcusdt-2026-01-01") / "BTCUSDT-aggTrades-2026-01-01.head5000.csv"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["candles", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows_of(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CANDLE_COLUMNS
    return list(reader)


def test_kraken_trades_give_kraken_official_one_minute_candles(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        [str(shared_data / KRAKEN / "trades.json"), "--interval", "1m", "--empty", "fill"], capsys
    )
    assert code == 0
    ours = {row["open_time"]: row for row in rows_of(out)}
    official = json.loads((shared_data / KRAKEN / "ohlc-1m.json").read_text())
    rows = official["result"]["XBTUSDT"]
    assert len(rows) == 206
    for time, open_, high, low, close, vwap, volume, count in rows:
        stamp = f"{_iso(time)}"
        mine = ours[stamp]
        assert (mine["instrument"], mine["interval"]) == ("KRAKEN:XBTUSDT", "1m")
        assert [Decimal(mine[k]) for k in ("open", "high", "low", "close", "volume")] == [
            Decimal(v) for v in (open_, high, low, close, volume)
        ], stamp
        assert int(mine["trades"]) == count, stamp
        assert abs(Decimal(mine["vwap"]) - Decimal(vwap)) <= Decimal("0.1"), stamp


def _iso(epoch_seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_binance_candles_count_raw_trades_and_sum_exactly(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_data / BINANCE
    code, out, err = run_cli([str(path), "--interval", "1m"], capsys)
    assert code == 0, err
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for line in path.read_text().splitlines():
        _, price, qty, first, last, micros, buyer_maker, _ = line.split(",")
        minute = _iso(int(micros) // 60_000_000 * 60)
        sums = expected[minute]
        sums[0] += Decimal(qty)
        sums[1] += Decimal(price) * Decimal(qty)
        sums[2] += int(last) - int(first) + 1
        sums[3] += Decimal(qty) if buyer_maker == "False" else 0
    rows = rows_of(out)
    assert [row["open_time"] for row in rows] == sorted(expected)
    for row in rows:
        sums = expected[row["open_time"]]
        got = [Decimal(row[k]) for k in ("volume", "quote_volume", "trades", "taker_buy_volume")]
        assert got == sums
        for name in ("open", "high", "low", "close", "volume", "quote_volume", "vwap"):
            assert "e" not in row[name].lower()
            assert "." in row[name]


def test_output_formats_carry_the_same_candles(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(shared_data / BINANCE)
    args = [source, "--interval", "1m", "--interval", "5m", "--final-only"]
    _, csv_text, _ = run_cli(args, capsys)
    _, jsonl_text, _ = run_cli([*args, "--output-format", "jsonl"], capsys)
    assert main(["candles", *args, "--output", str(tmp_path / "c.parquet")]) == 0
    from_csv = rows_of(csv_text)
    from_json = [json.loads(line) for line in jsonl_text.splitlines()]
    table = pq.read_table(tmp_path / "c.parquet").to_pylist()
    assert len(from_csv) == len(from_json) == len(table) > 0
    for row, record, parquet in zip(from_csv, from_json, table, strict=True):
        assert record["status"] == "closed"
        for name in ("open", "high", "low", "close", "volume", "quote_volume", "vwap"):
            assert Decimal(row[name]) == Decimal(record[name]) == parquet[name]
        assert int(row["trades"]) == record["trades"] == parquet["trades"]
        assert row["open_time"] == record["open_time"]
        assert parquet["open_time"].strftime("%Y-%m-%dT%H:%M:%SZ") == row["open_time"]


def generic_csv(folder: Path, *rows: str) -> Path:
    path = folder / "ticks.csv"
    path.write_text("\n".join(["instrument,trade_id,price,size,side,ts_event", *rows]) + "\n")
    return path


def test_bad_rows_are_reported_and_the_good_ones_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = generic_csv(
        tmp_path,
        "TEST:ABC,1,100.5,2,buy,1767225600000000000",
        "TEST:ABC,2,abc,2,buy,1767225601000000000",
        "TEST:ABC,3,101,1,sell,1767225602000000000",
    )
    code, out, err = run_cli([str(path), "--interval", "1m"], capsys)
    assert code == 0
    (row,) = rows_of(out)
    assert (row["open"], row["close"], row["volume"], row["trades"]) == ("100.5", "101.0", "3", "2")
    assert "line 3: price" in err
    assert "1 bad" in err


def test_candles_the_input_does_not_cover_to_their_end_are_open_not_final(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_data / BINANCE  # 00:00:00.039 to 00:12:19.347
    args = [str(path), "--interval", "1m", "--interval", "1h", "--output-format", "jsonl"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    status = {(r["interval"], r["open_time"]): r["status"] for r in map(json.loads, out.split())}
    assert status.pop(("1h", "2026-01-01T00:00:00Z")) == "open"
    assert status.pop(("1m", "2026-01-01T00:12:00Z")) == "open"
    assert set(status.values()) == {"closed"}
    assert len(status) == 12  # 00:00 to 00:11, each ended before a later tick

    code, out, err = run_cli([*args, "--final-only"], capsys)
    assert code == 0, err
    final = [json.loads(line) for line in out.split()]
    assert [(r["interval"], r["open_time"]) for r in final] == sorted(status)
    assert {r["status"] for r in final} == {"closed"}
    assert "2 candles left out: the input ends inside them, so they are not final" in err


def test_kraken_ohlc_candles_are_refused_as_no_trades(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for format_ in ([], ["--format", "kraken-trades"]):
        path = shared_data / KRAKEN / "ohlc-1m.json"
        code, out, err = run_cli([str(path), "--interval", "1m", *format_], capsys)
        assert code == 2
        assert out == ""
        assert "mdp candles: error: ohlc-1m.json: Kraken OHLC candles" in err
        assert "not trades" in err
        assert "bad row" not in err


def test_a_run_in_which_every_row_is_bad_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = generic_csv(
        tmp_path,
        "TEST:ABC,1,abc,2,buy,1767225600000000000",
        "TEST:ABC,2,100,2,up,1767225601000000000",
    )
    code, out, err = run_cli([str(path), "--interval", "1m"], capsys)
    assert code == 2
    assert "mdp candles: error: all 2 rows were bad" in err
    assert "line 2: price" in err
    assert rows_of(out) == []


def test_synthetic_ticks_make_candles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["--synthetic", "--duration", "180", "--interval", "1m"], capsys)
    assert code == 0, err
    rows = rows_of(out)
    assert {row["interval"] for row in rows} == {"1m"}
    assert len(rows) == 9  # three instruments, three minutes each


def test_the_history_apis_formats_carry_every_field_and_the_same_candles(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(shared_data / BINANCE), "--interval", "1m", "--interval", "5m"]
    _, jsonl_text, _ = run_cli([*args, "--output-format", "jsonl"], capsys)
    _, json_text, _ = run_cli([*args, "--output-format", "json"], capsys)
    assert main(["candles", *args, "--quiet", "--output", str(tmp_path / "c.arrows")]) == 0
    lines = [json.loads(line) for line in jsonl_text.splitlines()]
    (document,) = [json.loads(json_text)]
    table = pa.ipc.open_stream((tmp_path / "c.arrows").read_bytes()).read_all()
    assert tuple(document["candles"][0]) == tuple(table.column_names) == CANDLE_FIELDS
    assert len(lines) == len(document["candles"]) == table.num_rows > 0
    for line, record, arrow in zip(lines, document["candles"], table.to_pylist(), strict=True):
        assert {k: record[k] for k in line} == line
        assert record["gap"] is arrow["gap"] is False
        for name in ("open", "close", "volume", "quote_volume", "vwap"):
            assert Decimal(record[name]) == arrow[name]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/ticks.csv"], "no such file"),
        (["--synthetic", "--interval", "7x"], "bad interval"),
        ([], "give tick files, or --synthetic"),
        (["--synthetic", "--output-format", "parquet"], "Parquet output needs --output FILE"),
        (["--synthetic", "--output-format", "arrow"], "Arrow output needs --output FILE"),
    ],
)
def test_bad_requests_exit_2_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert message in err
    assert out == ""


def test_an_undetectable_format_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mystery.bin"
    path.write_bytes(b"\x00\x01\x02")
    code, _, err = run_cli([str(path)], capsys)
    assert code == 2
    assert "format" in err


def test_the_installed_command_reports_an_unknown_format_with_exit_2() -> None:
    mdp = Path(sys.executable).parent / "mdp"
    done = subprocess.run(
        [str(mdp), "candles", "x.csv", "--format", "excel"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice: 'excel'" in done.stderr


def test_a_kraken_file_over_the_size_limit_exits_2_naming_it_and_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trades.json"
    path.write_text('{"error": [], "result": {"XBTUSDT": [')
    subprocess.run(["truncate", "--size=1G", str(path)], check=True)  # sparse: no disk used
    code, out, err = run_cli([str(path)], capsys)
    assert code == 2
    assert "trades.json: 1,073,741,824 bytes, over the 67,108,864 bytes" in err
    assert out == ""
