"""Generic tick CSV: a header row naming the columns of :mod:`ingest.files.generic`.

Example::

    instrument,trade_id,price,size,side,ts_event
    BINANCE:BTCUSDT,1,87648.21,0.08185,sell,2026-01-01T00:00:00.039409Z

Rows may mix instruments: each chunk yields one batch per instrument.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from core.ticks import TickBatch
from ingest.files import generic
from ingest.files.errors import TickFileError
from ingest.files.fields import ERROR, LINE, Field, check_rows
from ingest.files.formats import FileFormat, Head
from ingest.files.lines import (
    field,
    field_count,
    first_line,
    header_names,
    line_chunks,
    open_binary,
    split_fields,
)
from ingest.files.report import ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS, to_batches


def read_generic_csv(
    path: Path,
    *,
    instrument: str | None = None,
    report: ReadReport | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[TickBatch]:
    """Stream the ticks of a generic CSV file, at most ``chunk_rows`` rows per batch.

    ``instrument`` is for files without an ``instrument`` column.
    """
    report = report if report is not None else ReadReport()
    header = first_line(path)
    if header is None:
        raise TickFileError(f"{path.name}: empty file (a header row is required)")
    names = header_names(header)
    used = generic.used_columns(names, instrument, path.name)
    positions = {name: names.index(name) for name in used}
    with open_binary(path) as stream:
        for chunk in line_chunks(stream, chunk_rows, skip_header=True):
            yield from to_batches(
                *stage(chunk, positions, len(names), instrument), report, path.name
            )


def looks_like_generic_csv(head: Head) -> bool:
    """Whether a file's head is a CSV header naming the generic columns (``instrument`` may
    be missing: the reader can be given one)."""
    names = head.csv_names
    return names is not None and set(generic.REQUIRED) - {"instrument"} <= set(names)


def stage(
    chunk: pl.DataFrame, positions: dict[str, int], width: int, instrument: str | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (``line``, ``text``) as staged rows and rejected rows."""
    frame = split_fields(chunk)
    count = field_count()
    shape = Field({}, ((count != width, pl.format(f"expected {width} fields, got {{}}", count)),))
    frame, wrong_shape = check_rows(frame, [[shape]])
    frame = frame.select(LINE, *(field(index).alias(name) for name, index in positions.items()))
    good, bad = generic.stage(frame, instrument)
    return good, pl.concat([wrong_shape, bad]).sort(LINE).select(LINE, ERROR)


CSV: Final = FileFormat("csv", looks_like_generic_csv, read_generic_csv)
"""Generic CSV, as file detection and ``--format`` know it."""
