"""Response formats: which one a request wants, and their media types.

``format=`` wins; otherwise the ``Accept`` header chooses (by quality, then by the order of
the formats: the first at a quality); otherwise JSON. Candles come in every format of
:mod:`core.present` (:func:`choose_candles`), ticks and gaps in :class:`Format`'s. Arrow is
the IPC *stream* format.
"""

from __future__ import annotations

import enum
from typing import Final

from core.present import CandleFormat, candle_format, candle_formats
from web.problems import invalid, not_acceptable


class Format(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    ARROW = "arrow"
    PARQUET = "parquet"


def _builtin(fmt: Format) -> CandleFormat:
    found = candle_format(fmt.value)
    assert found is not None, f"{fmt} is a built-in candle format (core.present.FORMATS)"
    return found


MEDIA_TYPES: Final = {fmt: _builtin(fmt).media_type for fmt in Format}
"""The media types of the formats of ticks and gaps: those of the candle formats so named."""


def choose(format_param: str | None, accept: str | None) -> Format:
    """The format a request for ticks or gaps asks for (see the module docstring)."""
    return Format(_choose(format_param, accept, {f.value: _builtin(f).media_types for f in Format}))


def choose_candles(format_param: str | None, accept: str | None) -> CandleFormat:
    """The candle format a request asks for: any of :func:`core.present.candle_formats`."""
    offered = {fmt.name: fmt.media_types for fmt in candle_formats()}
    found = candle_format(_choose(format_param, accept, offered))
    assert found is not None
    return found


def _choose(
    format_param: str | None, accept: str | None, offered: dict[str, tuple[str, ...]]
) -> str:
    """The name in ``offered`` (name: media types, in order of preference) a request asks
    for: by ``format=``, else by the ``Accept`` header, else the first."""
    names = list(offered)
    if format_param is not None and format_param.strip():
        name = format_param.strip().lower()
        if name not in offered:
            raise invalid("format", f"format must be one of {', '.join(names)}")
        return name
    if not accept or not accept.strip():
        return names[0]
    by_media = {media: name for name, types in reversed(offered.items()) for media in types}
    best: tuple[float, str] | None = None
    for media, quality in _parse_accept(accept):
        if quality <= 0:
            continue
        if media == "*/*":
            found: str | None = names[0]
        elif media.endswith("/*"):
            kind = media[:-1]
            found = next((n for n in names if offered[n][0].startswith(kind)), None)
        else:
            found = by_media.get(media)
        if found is not None and (best is None or quality > best[0]):
            best = (quality, found)
    if best is None:
        media_types = ", ".join(sorted({types[0] for types in offered.values()}))
        raise not_acceptable(f"none of the Accept header's media types is offered: {media_types}")
    return best[1]


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
