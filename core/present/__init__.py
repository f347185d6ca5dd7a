"""Candles presented: as exact text, JSON, CSV and Arrow columns, in one place. Pure.

- :mod:`~core.present.text`: a candle's values as text (exact decimals from the scaled
  integers, never through a float; ISO 8601 UTC times), its record, JSON object and CSV line;
- :mod:`~core.present.packed`: the packed integer rows and the Arrow columns built from them;
- :mod:`~core.present.live`: the WebSocket protocol's candle and tick objects;
- :mod:`~core.present.document`: what a format is; :mod:`~core.present.registry`: the
  formats by name, media type and file suffix;
- one module per format (:data:`FORMATS`), each ending in its ``FORMAT``.

The history API's content negotiation and ``mdp candles``' ``--output-format`` both offer
every registered format. A new format is a module with an encoder and its ``FORMAT``, plus
its line in :data:`FORMATS` (``docs/history-api.md``, "Adding a format").
"""

from __future__ import annotations

from typing import Final

from core.present import arrow_stream, csv_table, json_page, jsonl, parquet_file
from core.present.document import (
    CandleEncoder,
    CandleFormat,
    Document,
    PageInfo,
    ReadForm,
    ReadyEncoder,
    Scales,
)
from core.present.registry import (
    by_media_type,
    by_suffix,
    candle_format,
    candle_formats,
    register,
    unregister,
)

FORMATS: Final = (
    json_page.FORMAT,
    csv_table.FORMAT,
    arrow_stream.FORMAT,
    parquet_file.FORMAT,
    jsonl.FORMAT,
)
"""The built-in formats, in the order content negotiation prefers them (JSON first)."""

for _format in FORMATS:
    register(_format)

__all__ = [
    "FORMATS",
    "CandleEncoder",
    "CandleFormat",
    "Document",
    "PageInfo",
    "ReadForm",
    "ReadyEncoder",
    "Scales",
    "by_media_type",
    "by_suffix",
    "candle_format",
    "candle_formats",
    "register",
    "unregister",
]
