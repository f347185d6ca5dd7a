"""JSON lines: one candle object per line (``mdp candles``' ``jsonl``), no envelope."""

from __future__ import annotations

from collections.abc import Sequence

from core.candles import Candle
from core.present.document import CandleFormat, Document
from core.present.text import CANDLE_COLUMNS, json_objects


class JsonLines:
    def __init__(self, document: Document) -> None:
        self._object = json_objects(document.fields)

    def head(self) -> bytes:
        return b""

    def candles(self, candles: Sequence[Candle]) -> bytes:
        return b"".join([self._object(c) + b"\n" for c in candles])

    def tail(self) -> bytes:
        return b""


FORMAT = CandleFormat(
    name="jsonl",
    media_type="application/x-ndjson",
    suffixes=(".jsonl", ".json"),
    encoder=JsonLines,
    accepts=("application/jsonl",),
    table_fields=(*CANDLE_COLUMNS, "status", "revision"),
)
