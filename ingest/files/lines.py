"""Text files in chunks of numbered lines, and CSV fields cut from them with polars.

Lines are numbered from 1 as in the file; blank lines are dropped (they are no rows). CSV here
is the plain kind tick files use: ``,`` separated, one row per line, no separator inside a
field. Surrounding double quotes of a field are removed, so ``"BINANCE:BTCUSDT"`` is read too.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO

import polars as pl

from ingest.files.errors import TickFileError

TEXT = "text"
FIELDS = "fields"


@contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading; a ``.zip`` (as Binance ships its dumps) opens its one member."""
    if path.suffix.lower() != ".zip":
        try:
            file = path.open("rb")
        except OSError as exc:
            raise TickFileError(f"{path}: cannot open ({exc.strerror or exc})") from exc
        with file:
            yield file
        return
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise TickFileError(f"{path}: not a readable zip file ({exc})") from exc
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise TickFileError(f"{path}: expected one file in the zip, found {len(members)}")
        with archive.open(members[0]) as stream:
            yield stream


def read_head(path: Path, size: int = 65_536) -> bytes:
    """The first ``size`` bytes of ``path`` (of its member, for a zip)."""
    with open_binary(path) as stream:
        return stream.read(size)


def first_line(path: Path) -> str | None:
    """The first non-blank line of ``path``, trimmed; None for a blank file."""
    with open_binary(path) as stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip().lstrip("\ufeff")
            if line:
                return line
    return None


def line_chunks(
    stream: IO[bytes], chunk_lines: int, *, skip_header: bool = False
) -> Iterator[pl.DataFrame]:
    """Frames of at most ``chunk_lines`` non-blank lines: ``line`` (Int64) and ``text``.

    ``skip_header`` leaves out the first non-blank line.
    """
    if chunk_lines < 1:
        raise ValueError("chunk_rows must be at least 1")
    first = 1
    while True:
        lines = list(islice(stream, chunk_lines))
        if not lines:
            return
        frame = pl.DataFrame(
            {
                "line": pl.int_range(first, first + len(lines), eager=True, dtype=pl.Int64),
                TEXT: _decode(lines),
            }
        )
        text = pl.col(TEXT).str.strip_chars_end("\r\n")
        if first == 1:  # a byte-order mark some editors put at the start
            text = text.str.strip_chars_start("\ufeff")
        frame = frame.with_columns(text)
        first += len(lines)
        frame = frame.filter(pl.col(TEXT).str.strip_chars() != "")
        if skip_header and not frame.is_empty():
            frame, skip_header = frame.slice(1), False
        yield frame


def _decode(lines: list[bytes]) -> pl.Series:
    try:
        return pl.Series(TEXT, lines, dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.ComputeError:  # invalid UTF-8 somewhere: the odd bytes become U+FFFD
        return pl.Series(TEXT, [line.decode("utf-8", "replace") for line in lines])


def split_fields(frame: pl.DataFrame) -> pl.DataFrame:
    """Add a list column ``fields`` with the comma-separated fields of ``text``."""
    return frame.with_columns(pl.col(TEXT).str.split(",").alias(FIELDS))


def field(index: int) -> pl.Expr:
    """Field ``index`` of each row (null past the end), trimmed and unquoted."""
    return pl.col(FIELDS).list.get(index, null_on_oob=True).str.strip_chars(' \t"')


def field_count() -> pl.Expr:
    """How many fields each row has."""
    return pl.col(FIELDS).list.len()


def header_names(line: str) -> list[str]:
    """Lower-cased, trimmed, unquoted column names of a header line."""
    return [name.strip().strip('"').strip().lower() for name in line.split(",")]
