"""Tick files to :class:`~core.ticks.TickBatch` streams, with a report of the bad rows.

The generic formats have a module each (``generic_csv``, ``parquet``); a venue's dump formats
live in the venue's folder (``ingest/venues/<venue>/files.py``). The shared machinery is
vectorised with polars: ``lines`` cuts text into numbered rows, ``fields``, ``decimals`` and
``timestamps`` parse and check columns, ``staging`` turns checked rows into batches,
``formats`` describes a format. See ``docs/ingest.md`` for the formats and rules.

The entry points that know every format, :func:`ingest.files.reader.read_ticks` and
:mod:`ingest.files.detect`, read the venue registry; the venues' readers build on this
package, so the package itself does not import those two (that would be an import circle).
"""

from ingest.files.errors import TickFileError
from ingest.files.formats import FileFormat
from ingest.files.generic_csv import read_generic_csv
from ingest.files.parquet import read_parquet_ticks
from ingest.files.report import MAX_KEPT_BAD_ROWS, BadRow, ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "MAX_KEPT_BAD_ROWS",
    "BadRow",
    "FileFormat",
    "ReadReport",
    "TickFileError",
    "read_generic_csv",
    "read_parquet_ticks",
]
