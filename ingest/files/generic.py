"""The generic tick layout shared by the CSV and Parquet readers.

Columns by name, in any order, extra columns ignored:

=============  ========  ===================================================================
column         required  content
=============  ========  ===================================================================
instrument     yes [1]_  ``VENUE:SYMBOL``; rows may mix instruments
trade_id       yes       venue trade id, integer ``0 .. 2**63-1``
price          yes       positive exact decimal
size           yes       positive exact decimal
side           yes       aggressor: ``buy``, ``sell``, ``b``, ``s`` or ``unknown`` (any case)
ts_event       yes       epoch nanoseconds or ISO 8601 with offset (see ``timestamps``)
ts_recv        no        as ``ts_event``; empty or absent means ``ts_event``
trades         no        venue trades the row stands for, at least 1; empty or absent means 1
=============  ========  ===================================================================

.. [1] unless the reader is given an ``instrument`` for a file without that column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from core.instruments import validate_instrument
from core.ticks import Side
from ingest.files.decimals import decimal_field, expand_exponents
from ingest.files.errors import TickFileError
from ingest.files.fields import (
    Field,
    check_rows,
    choice_field,
    integer_field,
    missing,
    optional,
    text,
)
from ingest.files.timestamps import epoch_ns_field

REQUIRED: Final = ("instrument", "trade_id", "price", "size", "side", "ts_event")
OPTIONAL: Final = ("ts_recv", "trades")
SIDES: Final = {
    "buy": int(Side.BUY),
    "sell": int(Side.SELL),
    "b": int(Side.BUY),
    "s": int(Side.SELL),
    "unknown": int(Side.UNKNOWN),
}


def used_columns(names: Sequence[str], instrument: str | None, source: str) -> list[str]:
    """The layout columns present in ``names``; ``TickFileError`` if the layout is not met."""
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TickFileError(f"{source}: repeated columns: {', '.join(duplicates)}")
    required = [name for name in REQUIRED if not (name == "instrument" and instrument)]
    absent = [name for name in required if name not in names]
    if absent:
        raise TickFileError(
            f"{source}: missing columns: {', '.join(absent)} "
            f"(the layout is {','.join(REQUIRED)} plus optional {','.join(OPTIONAL)})"
        )
    if instrument is not None:
        validate_instrument(instrument)
        if "instrument" in names:
            raise TickFileError(
                f"{source}: the file has an instrument column; do not pass an instrument"
            )
    return [name for name in (*REQUIRED, *OPTIONAL) if name in names]


def stage(frame: pl.DataFrame, instrument: str | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Trimmed text columns of the layout (plus ``line``) as staged rows and rejected rows.

    ``instrument`` stands in for a missing ``instrument`` column.
    """
    frame = expand_exponents(frame, ("price", "size"))
    fields = [
        integer_field("trade_id"),
        decimal_field("price"),
        decimal_field("size"),
        choice_field("side", SIDES),
        epoch_ns_field("ts_event"),
    ]
    if instrument is None:
        value = text("instrument")
        fields.insert(0, Field({}, ((missing(value), "instrument is missing"),)))
    if "ts_recv" in frame.columns:
        fields.append(optional(epoch_ns_field("ts_recv"), "ts_recv"))
    if "trades" in frame.columns:
        fields.append(optional(integer_field("trades", minimum=1), "trades"))
    good, bad = check_rows(frame, [fields])
    defaults = {
        "instrument": pl.lit(instrument, pl.String),
        "ts_recv": pl.col("ts_event"),
        "trades": pl.lit(1, pl.Int64),
    }
    good = good.with_columns(
        (pl.col(name).fill_null(default) if name in good.columns else default).alias(name)
        for name, default in defaults.items()
    )
    return good, bad
