"""Kraken REST trades JSON (the ``/0/public/Trades`` envelope) to tick batches.

``{"error": [], "result": {"XBTUSDT": [[price, volume, time, side, ordertype, misc, trade_id],
...], "last": "..."}}``. Price and volume are decimal strings, ``time`` is decimal epoch
seconds, parsed as :class:`Decimal` so that the nanoseconds are exact to the digits written;
``side`` ``b``/``s`` is the aggressor. Each pair key becomes the instrument ``KRAKEN:<key>``.
A row's ``line`` is its 1-based index in its pair's array. ``ts_recv`` is ``ts_event``.

Detection (:data:`TRADES`) knows the file by a JSON object with a ``"result"`` or ``"error"``
key near its start.

The JSON is read whole (a response is one document), and as Python objects with
:class:`Decimal` numbers it takes about five times its size in memory; a file larger than
:data:`MAX_FILE_BYTES` is refused before it is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import polars as pl

from core.instruments import make_instrument, validate_instrument
from core.ticks import Side, TickBatch
from ingest.files.decimals import decimal_field, expand_exponents
from ingest.files.errors import TickFileError
from ingest.files.fields import ERROR, LINE, check_rows
from ingest.files.formats import FileFormat, Head
from ingest.files.report import ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS, to_batches
from ingest.files.timestamps import seconds_to_ns

ROW_FIELDS = ("price", "volume", "time", "side", "ordertype", "misc", "trade_id")
OHLC_FIELDS = ("time", "open", "high", "low", "close", "vwap", "volume", "count")
"""A row of Kraken's ``/0/public/OHLC`` response, which this reader refuses."""
_SIDES = {"b": int(Side.BUY), "s": int(Side.SELL)}
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
"""The largest trades file read (about 850,000 trades, some 320 MB in memory once parsed). A
Kraken response holds at most 1,000 trades; a day of its busiest pair, collected into one
response, is a few MB (the 471 trades of ``shared/data`` take 35 kB)."""


def read_kraken_trades(
    path: Path,
    *,
    instrument: str | None = None,
    report: ReadReport | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_bytes: int = MAX_FILE_BYTES,
) -> Iterator[TickBatch]:
    """Stream the ticks of a Kraken trades response, at most ``chunk_rows`` rows per batch.

    ``instrument`` replaces ``KRAKEN:<pair>`` and is only allowed for a single-pair response.
    A file over ``max_bytes`` is refused (:class:`TickFileError`) before it is read.
    """
    report = report if report is not None else ReadReport()
    pairs = load_pairs(path, max_bytes)
    if instrument is not None:
        validate_instrument(instrument)
        if len(pairs) != 1:
            raise TickFileError(f"{path.name}: holds {len(pairs)} pairs; cannot name them all")
    for pair, rows in pairs.items():
        name = instrument or _pair_instrument(path, pair)
        for start in range(0, len(rows), chunk_rows):
            chunk = rows[start : start + chunk_rows]
            yield from to_batches(*stage(chunk, name, first_line=start + 1), report, path.name)


def looks_like_trades(head: Head) -> bool:
    """Whether a file's head is a Kraken response: a JSON object with its envelope's keys."""
    text = head.text
    return text.startswith("{") and ('"result"' in text or '"error"' in text)


def load_pairs(path: Path, max_bytes: int = MAX_FILE_BYTES) -> dict[str, list[Any]]:
    """The trade arrays by pair key; ``TickFileError`` for anything but a good envelope, or
    a file over ``max_bytes`` (told by its size, before it is read)."""
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size <= max_bytes:
                data = stream.read(max_bytes + 1)  # (should the file have grown meanwhile)
                size = len(data)
        if size > max_bytes:
            raise TickFileError(
                f"{path.name}: {size:,} bytes, over the {max_bytes:,} bytes a Kraken trades"
                " file may have (it is read whole, at about five times its size in memory):"
                " split it into smaller responses"
            )
        document = json.loads(data, parse_float=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TickFileError(f"{path.name}: not readable JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise TickFileError(f"{path.name}: not a Kraken response (not a JSON object)")
    errors = document.get("error", [])
    if not isinstance(errors, list):
        raise TickFileError(f'{path.name}: "error" must be a list')
    if errors:
        raise TickFileError(f"{path.name}: Kraken returned errors: {', '.join(map(str, errors))}")
    if not isinstance(document.get("result"), dict):
        raise TickFileError(f'{path.name}: not a Kraken response (no "result" object)')
    pairs = {key: rows for key, rows in document["result"].items() if key != "last"}
    for key, rows in pairs.items():
        if not isinstance(rows, list):
            raise TickFileError(f"{path.name}: result {key!r} is not an array of trades")
        if rows and _is_ohlc_row(rows[0]):
            raise TickFileError(
                f"{path.name}: Kraken OHLC candles ([time, open, high, low, close, vwap, volume,"
                " count] rows), not trades: give the /0/public/Trades response"
            )
    if not pairs:
        raise TickFileError(f"{path.name}: the response holds no pair")
    return pairs


def _is_ohlc_row(row: Any) -> bool:
    """Whether ``row`` has the shape of an OHLC row: 8 fields, the first integer epoch
    seconds (a trade row has 7, the first its price as a string)."""
    return isinstance(row, list) and len(row) == len(OHLC_FIELDS) and type(row[0]) is int


def _pair_instrument(path: Path, pair: str) -> str:
    try:
        return make_instrument("KRAKEN", pair)
    except ValueError as exc:
        raise TickFileError(f"{path.name}: pair {pair!r} is no instrument symbol") from exc


def stage(rows: list[Any], instrument: str, first_line: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Trade rows as staged rows and rejected rows (``line`` counts from ``first_line``)."""
    columns: dict[str, list[Any]] = {
        LINE: [],
        "price": [],
        "volume": [],
        "side": [],
        "ts_event": [],
        "trade_id": [],
        ERROR: [],
    }
    for line, row in enumerate(rows, start=first_line):
        values, problems = _parse_row(row)
        columns[LINE].append(line)
        for name, value in values.items():
            columns[name].append(value)
        columns[ERROR].append("; ".join(problems) or None)
    frame = pl.DataFrame(
        columns,
        schema={
            LINE: pl.Int64,
            "price": pl.String,
            "volume": pl.String,
            "side": pl.Int8,
            "ts_event": pl.Int64,
            "trade_id": pl.Int64,
            ERROR: pl.String,
        },
    )
    frame = expand_exponents(frame, ("price", "volume"))
    parsed_bad = frame.filter(pl.col(ERROR).is_not_null()).select(LINE, ERROR)
    good, bad = check_rows(
        frame.filter(pl.col(ERROR).is_null()), [[decimal_field("price"), decimal_field("volume")]]
    )
    good = good.with_columns(
        instrument=pl.lit(instrument),
        size_raw=pl.col("volume_raw"),
        size_scale=pl.col("volume_scale"),
        ts_recv=pl.col("ts_event"),
        trades=pl.lit(1, pl.Int64),
    )
    return good, pl.concat([parsed_bad, bad]).sort(LINE)


def _parse_row(row: Any) -> tuple[dict[str, Any], list[str]]:
    """Field values of one trade (None where bad) and the problems found, naming the field."""
    values: dict[str, Any] = dict.fromkeys(("price", "volume", "side", "ts_event", "trade_id"))
    if not isinstance(row, list):
        return values, [f"trade is a {type(row).__name__}, not an array"]
    if len(row) < len(ROW_FIELDS):
        return values, [f"expected {len(ROW_FIELDS)} fields, got {len(row)}"]
    price, volume, time, side, _, _, trade_id = row[: len(ROW_FIELDS)]
    problems: list[str] = []
    values["price"] = _number_text(price, "price", problems)
    values["volume"] = _number_text(volume, "volume", problems)
    if isinstance(side, str) and side in _SIDES:
        values["side"] = _SIDES[side]
    else:
        problems.append(f"side {side!r} is not b or s")
    values["ts_event"] = _time_ns(time, problems)
    if type(trade_id) is int and 0 <= trade_id < 2**63:
        values["trade_id"] = trade_id
    else:
        problems.append(f"trade_id {trade_id!r} is not a non-negative 64-bit integer")
    return values, problems


def _number_text(value: Any, name: str, problems: list[str]) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Decimal) or type(value) is int:
        return str(value)
    problems.append(f"{name} {value!r} is not a decimal number")
    return None


def _time_ns(value: Any, problems: list[str]) -> int | None:
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except ArithmeticError:
            problems.append(f"time {value!r} is not a number")
            return None
    if type(value) is int:
        value = Decimal(value)
    if not isinstance(value, Decimal):
        problems.append(f"time {value!r} is not a number")
        return None
    try:
        return seconds_to_ns(value)
    except ValueError as exc:
        problems.append(f"time {exc}")
        return None


TRADES: Final = FileFormat("kraken-trades", looks_like_trades, read_kraken_trades)
"""The REST trades responses, as file detection and ``--format`` know them."""
