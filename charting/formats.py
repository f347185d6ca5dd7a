"""Response formats: which one a request wants, and their media types.

``format=json|csv|arrow|parquet`` wins; otherwise the ``Accept`` header chooses (by quality,
then by the order of :data:`MEDIA_TYPES`); otherwise JSON. Arrow is the IPC *stream* format.
"""

from __future__ import annotations

import enum
from typing import Final

from charting.problems import invalid, not_acceptable


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    ARROW = "arrow"
    PARQUET = "parquet"


MEDIA_TYPES: Final = {
    Format.JSON: "application/json",
    Format.CSV: "text/csv; charset=utf-8",
    Format.ARROW: "application/vnd.apache.arrow.stream",
    Format.PARQUET: "application/vnd.apache.parquet",
}
_ACCEPTED: Final = {
    "application/json": Format.JSON,
    "text/csv": Format.CSV,
    "application/vnd.apache.arrow.stream": Format.ARROW,
    "application/vnd.apache.arrow.file": Format.ARROW,
    "application/vnd.apache.parquet": Format.PARQUET,
    "application/x-parquet": Format.PARQUET,
}


def choose(format_param: str | None, accept: str | None) -> Format:
    """The format a request asks for (see the module docstring)."""
    if format_param is not None and format_param.strip():
        try:
            return Format(format_param.strip().lower())
        except ValueError:
            choices = ", ".join(f.value for f in Format)
            raise invalid("format", f"format must be one of {choices}") from None
    if not accept or not accept.strip():
        return Format.JSON
    best: tuple[float, int, Format] | None = None
    for rank, (media, quality) in enumerate(_parse_accept(accept)):
        if quality <= 0:
            continue
        if media in ("*/*", "application/*"):
            found: Format | None = Format.JSON
        elif media == "text/*":
            found = Format.CSV
        else:
            found = _ACCEPTED.get(media)
        if found is not None and (best is None or quality > best[0]):
            best = (quality, rank, found)
    if best is None:
        offered = ", ".join(sorted({m.split(";")[0] for m in MEDIA_TYPES.values()}))
        raise not_acceptable(f"none of the Accept header's media types is offered: {offered}")
    return best[2]


def _parse_accept(accept: str) -> list[tuple[str, float]]:
    items = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # also NaN
                    quality = 0.0
        items.append((media, quality))
    return items
