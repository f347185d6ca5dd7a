"""Timestamps to UTC epoch nanoseconds, exactly.

- Text (generic CSV, string columns in Parquet): either an integer count of epoch
  *nanoseconds*, which must be at least :data:`MIN_EPOCH_NS` (1973-03-03) so that seconds,
  milliseconds or microseconds are caught instead of read as 1970; or ISO 8601
  ``YYYY-MM-DDTHH:MM:SS[.fffffffff](Z|+HH:MM|-HH:MM|+HHMM)`` with ``T`` or a space, at most 9
  fraction digits and a required offset. Leap seconds (``:60``) are refused.
- Decimal epoch seconds (:func:`seconds_to_ns`, Kraken's ``time``), read as
  :class:`Decimal`; at most 9 fraction digits.

A venue's own time columns are read in its room (Binance's ``transact_time``:
:func:`ingest.venues.binance.files.transact_time_field`).
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from ingest.files.fields import UNSIGNED, Field, Rule, missing, text

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
MAX_EPOCH_DAYS = 106_750
"""2262-04-10: the last whole day that int64 nanoseconds reach."""
MIN_EPOCH_NS = 10**17

ISO_8601 = (
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.](\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)


def epoch_ns_field(name: str, output: str | None = None) -> Field:
    """Text holding integer epoch nanoseconds or ISO 8601 with an offset."""
    value = text(name)
    is_integer = value.str.contains(UNSIGNED)
    integer = value.cast(pl.Int64, strict=False)
    iso = _iso_to_ns(value)
    parsed = pl.when(is_integer).then(integer).otherwise(iso)
    rules: tuple[Rule, ...] = (
        (missing(value), f"{name} is missing"),
        (is_integer & integer.is_null(), pl.format(f"{name} {{}} does not fit 64 bits", value)),
        (
            is_integer & (integer < MIN_EPOCH_NS),
            pl.format(
                f"{name} {{}} is too small for epoch nanoseconds (seconds, ms or µs?)", value
            ),
        ),
        (
            ~is_integer & iso.is_null(),
            pl.format(
                f"{name} '{{}}' is neither epoch nanoseconds nor ISO 8601 with an offset", value
            ),
        ),
        (parsed <= 0, pl.format(f"{name} {{}} is not after 1970-01-01", value)),
    )
    return Field({output or name: parsed}, rules)


def _iso_to_ns(value: pl.Expr) -> pl.Expr:
    """ISO 8601 text with offset to epoch ns; null where it is not one or not a real time."""
    groups = value.str.extract_groups(ISO_8601)

    def part(index: int) -> pl.Expr:
        return groups.struct.field(str(index))

    def number(index: int) -> pl.Expr:
        return part(index).cast(pl.Int64, strict=False)

    days = part(1).str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64)
    hour, minute, second = number(2), number(3), number(4)
    fraction = part(5).fill_null("").str.pad_end(9, "0").cast(pl.Int64)
    offset_hours, offset_minutes = number(8).fill_null(0), number(9).fill_null(0)
    offset_sign = pl.when(part(7) == "-").then(-1).otherwise(1)
    offset = offset_sign * (offset_hours * 3600 + offset_minutes * 60)
    seconds = hour * 3600 + minute * 60 + second - offset
    valid = (
        (days < MAX_EPOCH_DAYS)
        & (hour < 24)
        & (minute < 60)
        & (second < 60)
        & (offset_hours < 24)
        & (offset_minutes < 60)
    )
    total = days * NS_PER_DAY + seconds * NS_PER_SECOND + fraction
    return pl.when(valid).then(total).otherwise(pl.lit(None, pl.Int64))


def seconds_to_ns(seconds: Decimal) -> int:
    """Exact epoch nanoseconds of decimal epoch seconds; ``ValueError`` if not representable."""
    if not seconds.is_finite():
        raise ValueError(f"{seconds} is not a finite number")
    nanoseconds = seconds.scaleb(9)
    whole = int(nanoseconds)
    if whole != nanoseconds:
        raise ValueError(f"{seconds} has more than 9 decimal places")
    if whole <= 0:
        raise ValueError(f"{seconds} is not after 1970-01-01")
    if whole >= 2**63:
        raise ValueError(f"{seconds} is beyond the year 2262")
    return whole
