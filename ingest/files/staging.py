"""From checked rows to tick batches, and the rejected rows into the report.

Every reader turns a chunk of its file into *staged* rows: the columns of
:data:`STAGED_SCHEMA`, with prices and sizes as integers at each row's own scale (see
:mod:`ingest.files.decimals`), plus a frame of rejected rows (``line``, ``error``). This module
records the rejected rows and cuts the good ones into one :class:`TickBatch` per instrument,
each with the finest price and size scales its rows need (see :func:`_batches` for the rare
chunk whose rows do not all fit 64 bits at those scales).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from core.codecs import MAX_REJECTED_DETAIL
from core.instruments import validate_instrument
from core.text import clipped
from core.ticks import I64, TickBatch
from ingest.files.decimals import raw_column, rescale_column, scale_column
from ingest.files.fields import ERROR, LINE
from ingest.files.report import MAX_KEPT_BAD_ROWS, BadRow, ReadReport

DEFAULT_CHUNK_ROWS: Final = 100_000
"""Rows read per chunk, and so the most rows in a batch, unless a reader is told otherwise."""

STAGED_SCHEMA: Final = {
    LINE: pl.Int64,
    "instrument": pl.String,
    "trade_id": pl.Int64,
    raw_column("price"): pl.Int64,
    scale_column("price"): pl.Int64,
    raw_column("size"): pl.Int64,
    scale_column("size"): pl.Int64,
    "side": pl.Int8,
    "ts_event": pl.Int64,
    "ts_recv": pl.Int64,
    "trades": pl.Int64,
}


def to_batches(
    good: pl.DataFrame, bad: pl.DataFrame, report: ReadReport, source: str
) -> list[TickBatch]:
    """Count ``good`` and ``bad`` rows in ``report``; batch the good ones by instrument.

    ``good`` holds the staged columns, ``bad`` the rejected rows as ``line`` and ``error``;
    ``source`` names the file in the report's bad rows.
    """
    report.rows += good.height + bad.height
    good = good.select(list(STAGED_SCHEMA))
    good, wrong_instrument = _check_instruments(good)
    record_bad(pl.concat([bad.select(LINE, ERROR), wrong_instrument]).sort(LINE), report, source)
    report.ticks += good.height
    return [
        batch
        for part in good.partition_by("instrument", maintain_order=True)
        for batch in _batches(part)
    ]


def record_bad(bad: pl.DataFrame, report: ReadReport, source: str) -> None:
    """Count the rows of ``bad`` (``line``, ``error``), keeping the first in ``report``; a
    reason is cut to :data:`~core.codecs.MAX_REJECTED_DETAIL` characters (it may quote a
    field of megabytes)."""
    if bad.is_empty():
        return
    kept = bad if report.on_bad else bad.head(max(0, MAX_KEPT_BAD_ROWS - len(report.bad_rows)))
    rows = (
        BadRow(line, clipped(reason, MAX_REJECTED_DETAIL), source)
        for line, reason in zip(kept[LINE].to_list(), kept[ERROR].to_list(), strict=True)
    )
    report.add_bad(rows, bad.height)


def _check_instruments(good: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    reasons: dict[str, str] = {}
    for instrument in good.get_column("instrument").unique().to_list():
        try:
            validate_instrument(instrument)
        except ValueError:
            reasons[instrument] = f"instrument {instrument!r} is not VENUE:SYMBOL in upper case"
    if not reasons:
        return good, pl.DataFrame(schema={LINE: pl.Int64, ERROR: pl.String})
    wrong = pl.col("instrument").is_in(list(reasons))
    bad = good.filter(wrong).select(
        LINE, pl.col("instrument").replace_strict(reasons, return_dtype=pl.String).alias(ERROR)
    )
    return good.filter(~wrong), bad


def _batches(part: pl.DataFrame) -> list[TickBatch]:
    """One batch at the finest scales of ``part``, unless some rows do not fit 64 bits there.

    Those rows (large values beside rows with many places: rare) fit at their own scales, so
    they go to further batches at the coarser scales they need.
    """
    scales: dict[str, int] = {}
    columns: dict[str, I64] = {}
    overflow = np.zeros(part.height, dtype=np.bool_)
    for name in ("price", "size"):
        row_scales = _i64(part, scale_column(name))
        scales[name] = int(row_scales.max())
        columns[name], wide = rescale_column(_i64(part, raw_column(name)), row_scales, scales[name])
        overflow |= wide
    if overflow.any():
        fits = ~overflow
        narrow = {name: column[fits] for name, column in columns.items()}
        return [
            _batch(part.filter(pl.Series(fits)), narrow, scales),
            *_batches(part.filter(pl.Series(overflow))),
        ]
    return [_batch(part, columns, scales)]


def _batch(part: pl.DataFrame, columns: dict[str, I64], scales: dict[str, int]) -> TickBatch:
    return TickBatch(
        instrument=part["instrument"][0],
        price_scale=scales["price"],
        size_scale=scales["size"],
        trade_id=_i64(part, "trade_id"),
        price=columns["price"],
        size=columns["size"],
        side=np.ascontiguousarray(part.get_column("side").to_numpy(), dtype=np.int8),
        ts_event=_i64(part, "ts_event"),
        ts_recv=_i64(part, "ts_recv"),
        trades=_i64(part, "trades"),
    )


def _i64(part: pl.DataFrame, name: str) -> I64:
    return np.ascontiguousarray(part.get_column(name).to_numpy(), dtype=np.int64)
