"""Binance aggTrades CSV (the official daily dumps, plain or zipped) to tick batches.

Columns, with or without a header row: ``agg_trade_id, price, quantity, first_trade_id,
last_trade_id, transact_time, is_buyer_maker, is_best_match`` (``is_best_match`` may be absent,
as in the futures dumps; it is not used). ``trade_id`` is ``agg_trade_id``; ``trades`` is
``last_trade_id - first_trade_id + 1``; ``is_buyer_maker`` true means the aggressor sold.
``transact_time`` is milliseconds or microseconds by magnitude: an integer below
:data:`MS_BELOW` (10**13, year 2286 in milliseconds) is milliseconds, one below
:data:`US_BELOW` (10**16) is microseconds, larger values are rejected; decided per value, so a
file may mix both. ``ts_recv`` is ``ts_event``.

Detection (:data:`AGGTRADES`) knows the file by its header row, or without one by a first row
of 7 or 8 fields with an integer id and ``true``/``false`` in the ``is_buyer_maker`` place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import polars as pl

from core.instruments import make_instrument, validate_instrument
from core.ticks import Side, TickBatch
from ingest.files.decimals import decimal_field
from ingest.files.errors import TickFileError
from ingest.files.fields import (
    UNSIGNED,
    Field,
    Rule,
    check_rows,
    choice_field,
    integer_field,
    missing,
    text,
)
from ingest.files.formats import FileFormat, Head
from ingest.files.lines import (
    field,
    field_count,
    first_line,
    line_chunks,
    open_binary,
    split_fields,
)
from ingest.files.report import ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS, to_batches

COLUMNS = (
    "agg_trade_id",
    "price",
    "quantity",
    "first_trade_id",
    "last_trade_id",
    "transact_time",
    "is_buyer_maker",
    "is_best_match",
)
HEADER_START = COLUMNS[0]
_FILE_NAME = re.compile(r"([A-Za-z0-9]+)-aggTrades-")
MS_BELOW: Final = 10**13
US_BELOW: Final = 10**16


def instrument_from_name(path: Path) -> str:
    """``BTCUSDT-aggTrades-2026-01-01.csv`` → ``BINANCE:BTCUSDT``; ``TickFileError`` if no match."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise TickFileError(
            f"{path.name}: cannot tell the instrument from the file name "
            "(expected SYMBOL-aggTrades-...); pass the instrument"
        )
    return make_instrument("BINANCE", match.group(1))


def read_binance_aggtrades(
    path: Path,
    *,
    instrument: str | None = None,
    report: ReadReport | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[TickBatch]:
    """Stream the ticks of a Binance aggTrades file, at most ``chunk_rows`` rows per batch."""
    report = report if report is not None else ReadReport()
    if instrument is None:
        instrument = instrument_from_name(path)
    else:
        validate_instrument(instrument)
    header = (first_line(path) or "").startswith(HEADER_START)
    with open_binary(path) as stream:
        for chunk in line_chunks(stream, chunk_rows, skip_header=header):
            yield from to_batches(*stage(chunk, instrument), report, path.name)


def looks_like_aggtrades(head: Head) -> bool:
    """Whether a file's head is an aggTrades CSV: the header row, or an aggTrades row."""
    names = head.csv_names
    if not names:
        return False
    if names[0] == HEADER_START:
        return True
    return len(names) in (7, 8) and names[0].isdigit() and names[6] in ("true", "false")


def transact_time_field(name: str, output: str) -> Field:
    """``transact_time``: milliseconds or microseconds by magnitude, to ns."""
    value = text(name)
    integer = value.cast(pl.Int64, strict=False)
    parsed = pl.when(integer < MS_BELOW).then(integer * 1_000_000).otherwise(integer * 1_000)
    rules: tuple[Rule, ...] = (
        (missing(value), f"{name} is missing"),
        (
            ~value.str.contains(UNSIGNED),
            pl.format(f"{name} '{{}}' is not a non-negative integer", value),
        ),
        (
            integer.is_null() | (integer >= US_BELOW),
            pl.format(f"{name} {{}} is too large for milliseconds or microseconds", value),
        ),
        (integer == 0, f"{name} is zero"),
    )
    return Field({output: parsed}, rules)


def stage(chunk: pl.DataFrame, instrument: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines of an aggTrades file (``line``, ``text``) as staged rows and rejected rows."""
    frame = split_fields(chunk)
    frame = frame.with_columns(field(index).alias(name) for index, name in enumerate(COLUMNS[:7]))
    count = field_count()
    shape = Field({}, ((~count.is_in([7, 8]), pl.format("expected 8 fields, got {}", count)),))
    fields = [
        integer_field("agg_trade_id", "trade_id"),
        decimal_field("price"),
        decimal_field("quantity"),
        integer_field("first_trade_id"),
        integer_field("last_trade_id"),
        transact_time_field("transact_time", "ts_event"),
        choice_field("is_buyer_maker", {"true": int(Side.SELL), "false": int(Side.BUY)}, "side"),
    ]
    trades = pl.col("last_trade_id") - pl.col("first_trade_id") + 1
    order_message = pl.format(
        "first_trade_id {} is after last_trade_id {}",
        pl.col("first_trade_id"),
        pl.col("last_trade_id"),
    )
    order = Field({"trades": trades}, ((trades < 1, order_message),))
    good, bad = check_rows(frame, [[shape], fields, [order]])
    good = good.with_columns(
        size_raw=pl.col("quantity_raw"),
        size_scale=pl.col("quantity_scale"),
        ts_recv=pl.col("ts_event"),
        instrument=pl.lit(instrument),
    )
    return good, bad


AGGTRADES: Final = FileFormat("binance-aggtrades", looks_like_aggtrades, read_binance_aggtrades)
"""The aggTrades dumps, as file detection and ``--format`` know them."""
