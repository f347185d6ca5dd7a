"""A tick-file format: its name, how to recognise it, and its reader.

Detection (:mod:`ingest.files.detect`) shows each format the :class:`Head` of a file, in a
fixed order, and takes the first that claims it. The generic formats (``csv``, ``parquet``)
are defined next to their readers here; a venue's dump formats live in the venue's folder
(``ingest/venues/<venue>/files.py``) and reach detection through the venue registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from core.ticks import TickBatch
from ingest.files.lines import header_names
from ingest.files.report import ReadReport

CSV_SUFFIXES: Final = frozenset({".csv", ".zip", ".txt"})
"""Names a CSV file may have (a zip holds one CSV); a name without a suffix may be CSV too."""


class Reader(Protocol):
    """A format's reader: the file's ticks, at most ``chunk_rows`` rows per batch."""

    def __call__(
        self,
        path: Path,
        *,
        instrument: str | None = ...,
        report: ReadReport | None = ...,
        chunk_rows: int = ...,
    ) -> Iterator[TickBatch]: ...


@dataclass(frozen=True, slots=True)
class Head:
    """What detection sees of a file: its suffix (lower case) and its first bytes (of the
    member, for a zip)."""

    suffix: str
    raw: bytes

    @property
    def text(self) -> str:
        """The first bytes as text, without a byte-order mark or leading blanks."""
        return self.raw.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")

    @property
    def csv_names(self) -> list[str] | None:
        """The fields of the first line, lower case, for a file that may be CSV; else None."""
        if self.suffix not in CSV_SUFFIXES and self.suffix:
            return None
        first = next((line for line in self.text.splitlines() if line.strip()), "")
        return header_names(first)


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A tick-file format: ``name`` (what ``--format`` takes), ``claims`` (whether a file's
    head has this format's shape) and ``read``."""

    name: str
    claims: Callable[[Head], bool]
    read: Reader
