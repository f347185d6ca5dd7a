"""Parquet tick files: the columns of :mod:`ingest.files.generic`, read in record batches.

Column types: ``instrument`` and ``side`` strings (dictionary-encoded too); ``trade_id`` and
``trades`` integers; ``price`` and ``size`` strings, decimals or integers (never floats, which
are not exact); ``ts_event`` and ``ts_recv`` int64 epoch nanoseconds, timestamps of any unit
(without a time zone they are taken as UTC) or strings as in CSV. A row's ``line`` is its
1-based row number in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.ticks import TickBatch
from ingest.files import generic
from ingest.files.errors import TickFileError
from ingest.files.fields import LINE
from ingest.files.formats import FileFormat, Head
from ingest.files.report import ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS, to_batches

_TEXT_TYPES: dict[str, tuple[str, ...]] = {
    "instrument": ("string",),
    "side": ("string",),
    "trade_id": ("string", "integer"),
    "trades": ("string", "integer"),
    "price": ("string", "integer", "decimal"),
    "size": ("string", "integer", "decimal"),
    "ts_event": ("string", "integer", "timestamp"),
    "ts_recv": ("string", "integer", "timestamp"),
}


MAGIC: Final = b"PAR1"
"""The first bytes of every Parquet file."""


def read_parquet_ticks(
    path: Path,
    *,
    instrument: str | None = None,
    report: ReadReport | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[TickBatch]:
    """Stream the ticks of a Parquet file, at most ``chunk_rows`` rows per batch.

    ``instrument`` is for files without an ``instrument`` column.
    """
    report = report if report is not None else ReadReport()
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise TickFileError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    with parquet:
        schema = parquet.schema_arrow
        used = generic.used_columns(list(schema.names), instrument, path.name)
        for name in used:
            _check_type(path, name, schema.field(name).type)
        first = 1
        for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=used):
            frame = pl.from_arrow(_decimals_as_text(record_batch))
            assert isinstance(frame, pl.DataFrame)
            frame = frame.select(
                pl.int_range(first, first + frame.height, dtype=pl.Int64).alias(LINE),
                *(_as_text(name, frame.schema[name]) for name in used),
            )
            first += frame.height
            yield from to_batches(*generic.stage(frame, instrument), report, path.name)


def _kind(arrow_type: Any) -> str:
    types = pa.types
    if types.is_dictionary(arrow_type):
        return _kind(arrow_type.value_type)
    checks: list[tuple[str, Callable[[Any], bool]]] = [
        ("string", lambda t: types.is_string(t) or types.is_large_string(t)),
        ("integer", types.is_integer),
        ("decimal", types.is_decimal),
        ("timestamp", types.is_timestamp),
    ]
    return next((kind for kind, check in checks if check(arrow_type)), str(arrow_type))


def _check_type(path: Path, name: str, arrow_type: Any) -> None:
    kind = _kind(arrow_type)
    if kind not in _TEXT_TYPES[name]:
        raise TickFileError(
            f"{path.name}: column {name} has type {arrow_type}; "
            f"expected {' or '.join(_TEXT_TYPES[name])}"
        )


def _decimals_as_text(record_batch: Any) -> Any:
    """Decimal columns as exact text, in arrow (polars cannot take every decimal width)."""
    table = pa.Table.from_batches([record_batch])
    for index, column in enumerate(table.schema):
        if pa.types.is_decimal(column.type):
            text = pc.cast(table.column(index), pa.string())
            table = table.set_column(index, column.name, text)
    return table


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        column = column.dt.epoch("ns")
    return column.cast(pl.String).str.strip_chars().alias(name)


def looks_like_parquet(head: Head) -> bool:
    """Whether a file starts with the Parquet magic (never a zip's member: not read so)."""
    return head.suffix != ".zip" and head.raw.startswith(MAGIC)


PARQUET: Final = FileFormat("parquet", looks_like_parquet, read_parquet_ticks)
"""Parquet, as file detection and ``--format`` know it."""
