"""Where ``mdp candles`` writes: CSV or JSON lines to a stream, or a Parquet file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Protocol, TextIO

import msgspec
import pyarrow.parquet as pq

from core.candles import Candle
from core.tables import CANDLE_COLUMNS, arrow_table, csv_row, json_record


class CandleSink(Protocol):
    def write(self, candles: list[Candle]) -> None: ...

    def close(self) -> None: ...


class CsvSink:
    """CSV with a header row; exact decimals, ISO 8601 UTC open times.

    ``owned`` streams (files the command opened) are closed by :meth:`close`.
    """

    def __init__(self, stream: TextIO, owned: bool = False) -> None:
        self._stream = stream
        self._owned = owned
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow(CANDLE_COLUMNS)

    def write(self, candles: list[Candle]) -> None:
        self._writer.writerows(csv_row(candle) for candle in candles)

    def close(self) -> None:
        _finish(self._stream, self._owned)


class JsonLinesSink:
    """One JSON object per line: the CSV columns plus ``status`` and ``revision``."""

    def __init__(self, stream: TextIO, owned: bool = False) -> None:
        self._stream = stream
        self._owned = owned
        self._encoder = msgspec.json.Encoder()

    def write(self, candles: list[Candle]) -> None:
        for candle in candles:
            self._stream.write(self._encoder.encode(json_record(candle)).decode())
            self._stream.write("\n")

    def close(self) -> None:
        _finish(self._stream, self._owned)


class ParquetSink:
    """A Parquet file with ``decimal128`` columns, written once all candles are in."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._candles: list[Candle] = []

    def write(self, candles: list[Candle]) -> None:
        self._candles.extend(candles)

    def close(self) -> None:
        pq.write_table(arrow_table(self._candles), self._path)


def _finish(stream: TextIO, owned: bool) -> None:
    if owned:
        stream.close()
    else:
        stream.flush()
