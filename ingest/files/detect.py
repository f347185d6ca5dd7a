"""Which tick-file format a path holds, from its name and a look at its first bytes.

The formats are tried in a fixed order, and the first that claims the file's
:class:`~ingest.files.formats.Head` wins:

- ``parquet``: starts with the Parquet magic ``PAR1``;
- each registered venue's dump formats, in the order of the registry
  (:data:`ingest.venues.VENUES`): ``binance-aggtrades``, ``kraken-trades``; each venue's
  ``files.py`` says how it knows its own;
- ``csv``: CSV whose first line names the columns of the generic layout.
"""

from __future__ import annotations

from pathlib import Path

from ingest.files import generic_csv, parquet
from ingest.files.errors import TickFileError
from ingest.files.formats import FileFormat, Head
from ingest.files.lines import read_head
from ingest.venues import venue_file_formats


def file_formats() -> dict[str, FileFormat]:
    """Every format by name, in the order detection tries them."""
    ordered = (parquet.PARQUET, *venue_file_formats(), generic_csv.CSV)
    formats = {fmt.name: fmt for fmt in ordered}
    if len(formats) != len(ordered):
        names = [fmt.name for fmt in ordered]
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"two tick-file formats are named {', '.join(repeated)}")
    return formats


def format_names() -> tuple[str, ...]:
    """The names ``--format`` takes, in the order detection tries them."""
    return tuple(file_formats())


def detect_format(path: str | Path) -> str:
    """The name of the format of ``path``; ``TickFileError`` (a ``ValueError``) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise TickFileError(f"{path}: no such file")
    head = Head(path.suffix.lower(), read_head(path))
    formats = file_formats()
    for fmt in formats.values():
        if fmt.claims(head):
            return fmt.name
    raise TickFileError(f"{path.name}: cannot tell the format; pass one of {', '.join(formats)}")
