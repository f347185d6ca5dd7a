"""Candle pages of the history API, in every format of :mod:`core.present`.

A page carries :data:`CANDLE_FIELDS`. Stored candles arrive in the ready form their format
reads (:attr:`core.present.CandleFormat.reads`; :mod:`charting.candle_reads`): JSON pages as
the rows' JSON objects joined by the database, Arrow and Parquet pages as packed integer
rows. CSV pages are lines written by the database (:class:`CsvLines`) until the storage read
interface hands over candles or packed rows; :func:`core.present.text.csv_line` writes the
same bytes. Every other format, and candles rolled up on read, take :class:`Candle` s: the
same encoders, so both roads give identical bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, LiteralString

from charting import database
from charting.candle_reads import PageForm
from core.candles import Candle
from core.present import (
    CandleEncoder,
    CandleFormat,
    Document,
    PageInfo,
    ReadForm,
    ReadyEncoder,
    Scales,
)
from core.present.arrow_stream import arrow_schema as _arrow_schema
from core.present.text import CANDLE_FIELDS, record_values

__all__ = [
    "CANDLE_FIELDS",
    "CandleEncoder",
    "CsvLines",
    "PageInfo",
    "ReadyEncoder",
    "Scales",
    "arrow_schema",
    "encoder",
    "read_form",
    "ready_encoder",
    "record",
]

_PAGE_FORMS: Final = {ReadForm.JSON: PageForm.JSON, ReadForm.PACKED: PageForm.PACKED}


def read_form(fmt: CandleFormat) -> PageForm | None:
    """The stored read form a page of ``fmt`` is written from (None: from candles)."""
    return None if fmt.reads is None else _PAGE_FORMS[fmt.reads]


def encoder(fmt: CandleFormat, info: PageInfo, scales: Scales) -> CandleEncoder:
    return fmt.encoder(Document(CANDLE_FIELDS, scales, info))


def ready_encoder(fmt: CandleFormat, info: PageInfo, scales: Scales) -> ReadyEncoder:
    out = encoder(fmt, info, scales)
    if fmt.reads is None or not isinstance(out, ReadyEncoder):
        raise ValueError(f"{fmt.name} pages are not written from a ready form")
    return out


def arrow_schema(scales: Scales) -> Any:
    """The Arrow schema of a page (every field of :data:`CANDLE_FIELDS`)."""
    return _arrow_schema(scales, CANDLE_FIELDS)


def record(candle: Candle) -> tuple[Any, ...]:
    """A candle's values after instrument and interval, in :data:`CANDLE_FIELDS` order."""
    return record_values(candle)[2:]


class CsvLines:
    """A CSV page from lines the database writes (:data:`charting.database.CSV_LINE`):
    :data:`CANDLE_FIELDS` as the header, the page's instrument and interval before each."""

    columns: LiteralString = database.CSV_LINE

    def __init__(self, info: PageInfo) -> None:
        self._prefix = f"{info.instrument},{info.interval},"

    def head(self) -> bytes:
        return (",".join(CANDLE_FIELDS) + "\n").encode()

    def rows(self, rows: Sequence[database.Row]) -> bytes:
        if not rows:
            return b""
        prefix = self._prefix
        return ("".join([f"{prefix}{row[0]}\n" for row in rows])).encode()

    def tail(self) -> bytes:
        return b""
