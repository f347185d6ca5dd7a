"""Time arithmetic of the history API: UTC nanoseconds."""

from __future__ import annotations

from typing import Final

from storage.times import END_OF_TIME

NS_PER_SECOND: Final = 1_000_000_000

__all__ = ["END_OF_TIME", "NS_PER_SECOND", "align_up"]


def align_up(ns: int, step: int) -> int:
    """The first multiple of ``step`` at or after ``ns``."""
    return -(-ns // step) * step
