"""Kept for :mod:`charting.candle_reads`, which still imports these from here: the packed
rows are :mod:`core.present.packed`'s. Goes once nothing imports it."""

from __future__ import annotations

from core.present.packed import packed_rows, status_codes

__all__ = ["packed_rows", "status_codes"]
