"""What a file read saw: rows, accepted ticks and the rejected rows with their reasons."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_KEPT_BAD_ROWS = 1000
"""Bad rows kept in :attr:`ReadReport.bad_rows`; the rest are only counted."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A rejected row: where it was (see :class:`ReadReport`) and why, naming the field.

    ``source`` is the file name, so that one report can cover several files.
    """

    line: int
    reason: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source} line {self.line}" if self.source else f"line {self.line}"
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class ReadReport:
    """Counts of one read, filled in while the batches stream out.

    ``line`` of a :class:`BadRow` is the 1-based line in a CSV file, the 1-based row number in
    a Parquet file and the 1-based index of the trade in its pair's array in a Kraken JSON file.
    ``rows == ticks + bad`` once the read has finished; header and blank lines are no rows.
    """

    rows: int = 0
    ticks: int = 0
    bad: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def add_bad(self, rows: Iterable[BadRow], count: int) -> None:
        """Count ``count`` rejected rows, keeping the first of ``rows`` up to the limit."""
        self.bad += count
        room = MAX_KEPT_BAD_ROWS - len(self.bad_rows)
        if room > 0:
            for _, row in zip(range(room), rows, strict=False):
                self.bad_rows.append(row)

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return self.bad == 0

    def summary(self) -> str:
        """One line: ``5000 rows, 4998 ticks, 2 bad (first: x.csv line 3: price ...)``."""
        text = f"{self.rows:,} rows, {self.ticks:,} ticks, {self.bad:,} bad"
        if self.bad_rows:
            text += f" (first: {self.bad_rows[0]})"
        return text
