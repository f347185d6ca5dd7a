"""Candle pages of the history API, in every format of :mod:`core.present`.

A page carries :data:`CANDLE_FIELDS`. Stored candles arrive through
:class:`storage.reads.HistoryReads` in the ready form their format reads
(:attr:`core.present.CandleFormat.reads`): JSON and CSV pages as the rows' JSON objects
joined by storage, Arrow and Parquet pages as packed integer rows. Every other format (JSON
lines) takes the stored page as :class:`Candle` s, and so do candles rolled up on read and
rows without their ready form: the same encoders, so both roads give identical bytes.
"""

from __future__ import annotations

from typing import Any

from core.candles import Candle
from core.present import (
    CandleEncoder,
    CandleFormat,
    Document,
    PageInfo,
    ReadyEncoder,
    Scales,
)
from core.present.arrow_stream import arrow_schema as _arrow_schema
from core.present.text import CANDLE_FIELDS, record_values

__all__ = [
    "CANDLE_FIELDS",
    "CandleEncoder",
    "PageInfo",
    "ReadyEncoder",
    "Scales",
    "arrow_schema",
    "encoder",
    "ready_encoder",
    "record",
]


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
