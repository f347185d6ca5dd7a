"""Parquet ticks: string and decimal prices, integer and timestamp times, bad rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.ticks import Side, TickBatch
from ingest.files import ReadReport, TickFileError, read_parquet_ticks

T0 = 1767225600000000000


def read(path: Path, **kwargs: object) -> tuple[list[TickBatch], ReadReport]:
    report = ReadReport()
    batches = list(read_parquet_ticks(path, report=report, **kwargs))  # type: ignore[arg-type]
    return batches, report


def write(tmp_path: Path, columns: dict[str, Any], **kwargs: Any) -> Path:
    path = tmp_path / "ticks.parquet"
    pq.write_table(pa.table(columns), path, **kwargs)
    return path


def test_decimal_columns_of_any_width_and_timestamp_types_are_read_exactly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "instrument": pa.array(["A:B", "C:D"]).dictionary_encode(),
            "trade_id": pa.array([1, 2], pa.int32()),
            "price": pa.array([Decimal("87648.21000000"), Decimal("2.5")], pa.decimal256(40, 8)),
            "size": pa.array([Decimal("0.08185"), Decimal("3")], pa.decimal128(10, 5)),
            "side": ["sell", "buy"],
            "ts_event": pa.array(
                [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "ts_recv": pa.array([T0 + 5, None], pa.int64()),
            "trades": pa.array([4, None], pa.int64()),
        },
    )
    batches, report = read(path)
    assert report.ok
    ab, cd = (batch.ticks()[0] for batch in batches)
    assert (ab.instrument, ab.price, ab.size, ab.side) == (
        "A:B",
        Decimal("87648.21"),
        Decimal("0.08185"),
        Side.SELL,
    )
    assert (ab.ts_event, ab.ts_recv, ab.trades) == (T0, T0 + 5, 4)
    assert (cd.ts_event, cd.ts_recv, cd.trades) == (T0 + 10**9, T0 + 10**9, 1)
    assert batches[0].price_scale == 2


def test_bad_rows_are_reported_by_row_number_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "instrument": ["A:B"] * 6,
            "trade_id": [1, 2, 3, 4, 5, 6],
            "price": ["1.5", None, "x", "1.5", "1.5", "1.5"],
            "size": ["1", "1", "1", "-1", "1", "1"],
            "side": ["b", "b", "b", "b", "up", "s"],
            "ts_event": pa.array([T0, T0, T0, T0, T0, 1767225600], pa.int64()),
        },
    )
    (batch,), report = read(path)
    assert batch.trade_id.tolist() == [1]
    assert report.bad == 5
    assert {bad.line: bad.reason for bad in report.bad_rows} == {
        2: "price is missing",
        3: "price 'x' is not a decimal number",
        4: "size -1 is not positive",
        5: "side 'up' is not one of buy, sell, b, s, unknown",
        6: "ts_event 1767225600 is too small for epoch nanoseconds (seconds, ms or µs?)",
    }


def test_row_numbers_and_chunks_follow_the_record_batches(tmp_path: Path) -> None:
    n = 10
    path = write(
        tmp_path,
        {
            "instrument": ["A:B"] * n,
            "trade_id": list(range(n)),
            "price": ["1"] * (n - 1) + ["0"],
            "size": ["1"] * n,
            "side": ["b"] * n,
            "ts_event": [T0 + i for i in range(n)],
        },
        row_group_size=3,
    )
    batches, report = read(path, chunk_rows=4)
    assert all(len(batch) <= 4 for batch in batches)
    assert report.ticks == 9
    assert [str(bad) for bad in report.bad_rows] == [
        "ticks.parquet line 10: price 0 is not positive"
    ]


def test_float_prices_are_refused_because_they_are_not_exact(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "instrument": ["A:B"],
            "trade_id": [1],
            "price": [1.5],
            "size": ["1"],
            "side": ["b"],
            "ts_event": [T0],
        },
    )
    with pytest.raises(TickFileError, match="column price has type double"):
        read(path)


def test_missing_columns_and_non_parquet_files_are_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path, {"instrument": ["A:B"], "price": ["1"]})
    with pytest.raises(TickFileError, match="missing columns: trade_id, size, side, ts_event"):
        read(path)
    path.write_text("not parquet")
    with pytest.raises(TickFileError, match="not a readable Parquet file"):
        read(path)
