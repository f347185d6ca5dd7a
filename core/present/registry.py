"""The candle formats by name: the history API and ``mdp candles`` offer every one of them.

A format is registered once (:func:`register`); :mod:`core.present` registers the built-in
ones in its ``FORMATS`` list. Nothing else lists formats.
"""

from __future__ import annotations

from typing import Final

from core.present.document import CandleFormat

_FORMATS: Final[dict[str, CandleFormat]] = {}


def register(fmt: CandleFormat) -> CandleFormat:
    """Add ``fmt``; a name, media type or suffix already taken by another is a ``ValueError``."""
    for other in _FORMATS.values():
        if other.name == fmt.name:
            raise ValueError(f"a candle format named {fmt.name!r} is registered already")
        if set(other.media_types) & set(fmt.media_types):
            raise ValueError(f"{fmt.name}: media type taken by {other.name}")
        if set(other.suffixes) & set(fmt.suffixes):
            raise ValueError(f"{fmt.name}: file suffix taken by {other.name}")
    _FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a format (for tests that register their own)."""
    del _FORMATS[name]


def candle_formats() -> tuple[CandleFormat, ...]:
    """Every format, in the order of registration (the first is the default)."""
    return tuple(_FORMATS.values())


def candle_format(name: str) -> CandleFormat | None:
    return _FORMATS.get(name)


def by_media_type(media: str) -> CandleFormat | None:
    """The format a media type (lower case, without parameters) asks for."""
    for fmt in _FORMATS.values():
        if media in fmt.media_types:
            return fmt
    return None


def by_suffix(suffix: str) -> CandleFormat | None:
    """The format of a file suffix such as ``.csv`` (lower case)."""
    for fmt in _FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    return None
