"""The one entry point: any supported tick file to a stream of tick batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.instruments import validate_instrument
from core.ticks import TickBatch
from ingest.files.detect import detect_format, file_formats
from ingest.files.errors import TickFileError
from ingest.files.report import ReadReport
from ingest.files.staging import DEFAULT_CHUNK_ROWS


def read_ticks(
    path: str | Path,
    format: str | None = None,
    instrument: str | None = None,
    report: ReadReport | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[TickBatch]:
    """Stream the ticks of ``path``: one instrument per batch, at most ``chunk_rows`` rows.

    ``format`` is one of :func:`~ingest.files.detect.format_names` (detected when None).
    ``instrument`` overrides the one a venue's file gives (a Binance file name, a Kraken
    pair), and stands in for a missing ``instrument`` column in generic CSV and Parquet. Bad
    rows go to ``report``; a file that cannot be read at all raises :class:`TickFileError`
    (before the first batch).
    """
    path = Path(path)
    if not path.is_file():
        raise TickFileError(f"{path}: no such file")
    formats = file_formats()
    if format is None:
        format = detect_format(path)
    if format not in formats:
        raise TickFileError(f"unknown format {format!r}; expected one of {', '.join(formats)}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    if instrument is not None:
        try:
            validate_instrument(instrument)
        except ValueError as exc:
            raise TickFileError(str(exc)) from exc
    return formats[format].read(path, instrument=instrument, report=report, chunk_rows=chunk_rows)
