"""Exact decimal text to fixed point, vectorised.

A value becomes an ``int64`` at its own scale, the number of fraction digits once trailing
zeros are stripped: ``"87648.21000000"`` is ``8764821`` at 2 places, ``"0.08185000"`` is
``8185`` at 5. :mod:`ingest.files.staging` then moves the rows of a batch to the finest scale
any of them needs. Nothing goes through a binary float.

Accepted text: ``[+-]digits[.digits]`` (``.5`` and ``5.`` too) and, through a slower exact path
for the few rows that use it, exponent notation such as ``1E-7`` (what ``str(Decimal)`` writes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

import numpy as np
import numpy.typing as npt
import polars as pl

from core.numbers import MAX_SCALE
from core.ticks import I64
from ingest.files.fields import Field, Rule, missing, text

PLAIN = r"^[+-]?(?:\d+\.?\d*|\.\d+)$"
EXPONENT = r"^[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d{1,3}$"
_EXPONENT = re.compile(EXPONENT)
_INT64_MAX = np.iinfo(np.int64).max


def raw_column(name: str) -> str:
    """Name of the column of decimal field ``name`` as an integer at its own scale."""
    return f"{name}_raw"


def scale_column(name: str) -> str:
    """Name of the column with the decimal places row ``name`` needs."""
    return f"{name}_scale"


def expand_exponents(frame: pl.DataFrame, names: Iterable[str]) -> pl.DataFrame:
    """Rewrite exponent notation (``1E-7``) in text columns ``names`` as plain decimals.

    Exact (through :class:`Decimal`) and cheap: only the distinct texts that use an exponent
    are touched, in Python; plain rows stay in polars.
    """
    for name in names:
        column = frame.get_column(name)
        odd = column.filter(column.str.contains(r"[eE]")).unique().to_list()
        mapping = {value: _plain(value) for value in odd if value is not None}
        if mapping:
            frame = frame.with_columns(pl.col(name).replace(mapping))
    return frame


def _plain(value: str) -> str:
    stripped = value.strip()
    if _EXPONENT.fullmatch(stripped) is None:
        return value
    try:
        return format(Decimal(stripped), "f")
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
        return value


def decimal_field(name: str) -> Field:
    """A positive exact decimal: ``<name>_raw`` (Int64) at ``<name>_scale`` places.

    The scale is the number of fraction digits once trailing zeros are stripped.
    """
    value = text(name)
    parts = value.str.split_exact(".", 1)
    fraction = parts.struct.field("field_1").fill_null("").str.strip_chars_end("0")
    digits = parts.struct.field("field_0") + fraction
    raw = digits.cast(pl.Int64, strict=False)
    rules: tuple[Rule, ...] = (
        (missing(value), f"{name} is missing"),
        (~value.str.contains(PLAIN), pl.format(f"{name} '{{}}' is not a decimal number", value)),
        (
            fraction.str.len_bytes() > MAX_SCALE,
            pl.format(f"{name} {{}} has more than {MAX_SCALE} decimal places", value),
        ),
        (
            raw.is_null() & (digits.str.len_bytes() <= 1),  # "", "+" or "-": a zero
            pl.format(f"{name} {{}} is not positive", value),
        ),
        (raw.is_null(), pl.format(f"{name} {{}} does not fit 64 bits", value)),
        (raw <= 0, pl.format(f"{name} {{}} is not positive", value)),
    )
    values = {
        raw_column(name): raw,
        scale_column(name): fraction.str.len_bytes().cast(pl.Int64),
    }
    return Field(values, rules)


def rescale_column(raw: I64, scale: I64, to_scale: int) -> tuple[I64, npt.NDArray[np.bool_]]:
    """``raw`` (each at its ``scale``) at ``to_scale`` places, and where that overflows int64."""
    places = to_scale - scale
    factor = np.power(np.int64(10), places, dtype=np.int64)
    overflow = raw > _INT64_MAX // factor
    return np.where(overflow, 0, raw) * factor, overflow
