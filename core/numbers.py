"""Exact decimal numbers as scaled integers (fixed point).

Prices and sizes travel through the hot paths as Python or numpy integers together with a
*scale*, the number of decimal places: ``raw=8764821, scale=2`` is ``87648.21``. Conversions to
and from :class:`~decimal.Decimal` and to text are exact; nothing here goes through a float.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_SCALE = 18
"""The most decimal places a price or size may have (10**18 still fits the int64 columns)."""

_POW10: list[int] = [10**k for k in range(2 * MAX_SCALE + 1)]


def pow10(k: int) -> int:
    """``10**k`` from a table, for the small non-negative ``k`` that scales use."""
    return _POW10[k]


def parse_decimal(text: str | Decimal) -> Decimal:
    """Parse decimal text strictly: finite numbers only, no exponent surprises left in."""
    try:
        value = text if isinstance(text, Decimal) else Decimal(text.strip())
    except (InvalidOperation, AttributeError) as exc:
        raise ValueError(f"not a decimal number: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def scale_of(value: Decimal) -> int:
    """Decimal places needed to hold ``value`` exactly (trailing zeros do not count)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only
    return max(0, -exponent)


def to_raw(value: Decimal, scale: int) -> int:
    """``value * 10**scale`` as an int; raises ``ValueError`` if that would lose digits."""
    scaled = value.scaleb(scale)
    raw = int(scaled)
    if raw != scaled:
        raise ValueError(f"{value} has more than {scale} decimal places")
    return raw


def to_decimal(raw: int, scale: int) -> Decimal:
    """The exact :class:`Decimal` of a scaled integer."""
    return Decimal(raw).scaleb(-scale)


def format_fixed(raw: int, scale: int) -> str:
    """Plain decimal text of a scaled integer: no exponent, no float artefacts.

    Trailing zeros of the fraction are kept, so that one column prints with one scale
    (``format_fixed(150, 2) == "1.50"``).
    """
    if scale == 0:
        return str(raw)
    sign = "-" if raw < 0 else ""
    digits = str(abs(raw)).rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def rescale(raw: int, from_scale: int, to_scale: int) -> int:
    """Move a scaled integer to a finer scale (``to_scale >= from_scale``), exactly."""
    if to_scale < from_scale:
        raise ValueError("rescaling to fewer decimal places could lose digits")
    return raw * _POW10[to_scale - from_scale]


def divide_rounded(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even, on integers (for VWAP)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
