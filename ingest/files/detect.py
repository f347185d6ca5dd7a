"""Which tick-file format a path holds, from its name and a look at its first bytes.

- ``parquet``: starts with the Parquet magic ``PAR1``.
- ``kraken-trades``: a JSON object (``.json``, or content starting with ``{``) with a
  ``"result"`` or ``"error"`` key near the start.
- ``binance-aggtrades``: CSV (``.csv``, ``.zip`` holding one CSV, or ``.txt``) whose first line
  is the aggTrades header, or 7 or 8 fields with an integer id and ``True``/``False`` in the
  ``is_buyer_maker`` place.
- ``csv``: CSV whose first line names the columns of the generic layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ingest.files import binance, generic
from ingest.files.errors import TickFileError
from ingest.files.lines import header_names, open_binary, read_head

BINANCE: Final = "binance-aggtrades"
KRAKEN: Final = "kraken-trades"
CSV: Final = "csv"
PARQUET: Final = "parquet"
FORMATS: Final = (BINANCE, KRAKEN, CSV, PARQUET)

_PARQUET_MAGIC = b"PAR1"
_CSV_SUFFIXES = {".csv", ".zip", ".txt"}


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS` for ``path``; ``TickFileError`` (a ``ValueError``) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise TickFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix != ".zip":
        with open_binary(path) as stream:
            if stream.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC:
                return PARQUET
    head = read_head(path).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if suffix == ".json" or head.startswith("{"):
        if head.startswith("{") and ('"result"' in head or '"error"' in head):
            return KRAKEN
        raise TickFileError(f"{path.name}: JSON, but not a Kraken trades response")
    if suffix in _CSV_SUFFIXES or not suffix:
        first = next((line for line in head.splitlines() if line.strip()), "")
        kind = _csv_kind(first)
        if kind is not None:
            return kind
    raise TickFileError(f"{path.name}: cannot tell the format; pass one of {', '.join(FORMATS)}")


def _csv_kind(first: str) -> str | None:
    names = header_names(first)
    if names and names[0] == binance.HEADER_START:
        return BINANCE
    if set(generic.REQUIRED) - {"instrument"} <= set(names):
        return CSV
    if len(names) in (7, 8) and names[0].isdigit() and names[6] in ("true", "false"):
        return BINANCE
    return None
