"""What a file read saw: rows, accepted ticks and the rejected rows with their reasons."""

from __future__ import annotations

from collections.abc import Callable, Iterable
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

    ``on_bad``, when set, is called with every bad row (not only the kept ones): the platform
    publishes each to ``md.ticks.rejected``.
    """

    rows: int = 0
    ticks: int = 0
    bad: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    on_bad: Callable[[BadRow], None] | None = None

    def add_bad(self, rows: Iterable[BadRow], count: int) -> None:
        """Count ``count`` rejected rows, keeping the first of ``rows`` up to the limit.

        ``rows`` holds all ``count`` rows when :attr:`on_bad` is set, else at least the kept.
        """
        self.bad += count
        for row in rows:
            if self.on_bad is not None:
                self.on_bad(row)
            if len(self.bad_rows) < MAX_KEPT_BAD_ROWS:
                self.bad_rows.append(row)
            elif self.on_bad is None:
                break

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
