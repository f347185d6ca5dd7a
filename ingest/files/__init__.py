"""Tick files to :class:`~core.ticks.TickBatch` streams, with a report of the bad rows.

One module per format (``binance``, ``kraken``, ``generic_csv``, ``parquet``); the shared
machinery is vectorised with polars: ``lines`` cuts text into numbered rows, ``fields``,
``decimals`` and ``timestamps`` parse and check columns, ``staging`` turns checked rows into
batches. See ``docs/ingest.md`` for the formats and rules.
"""

from ingest.files.binance import read_binance_aggtrades
from ingest.files.detect import FORMATS, detect_format
from ingest.files.errors import TickFileError
from ingest.files.generic_csv import read_generic_csv
from ingest.files.kraken import read_kraken_trades
from ingest.files.parquet import read_parquet_ticks
from ingest.files.reader import read_ticks
from ingest.files.report import MAX_KEPT_BAD_ROWS, BadRow, ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FORMATS",
    "MAX_KEPT_BAD_ROWS",
    "BadRow",
    "ReadReport",
    "TickFileError",
    "detect_format",
    "read_binance_aggtrades",
    "read_generic_csv",
    "read_kraken_trades",
    "read_parquet_ticks",
    "read_ticks",
]
