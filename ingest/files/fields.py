"""Vectorised field checks: polars expressions that parse text columns and name what is wrong.

Every parser returns a :class:`Field`: the parsed value columns and its rules, each a cheap
condition that marks a row bad and the reason naming the field, e.g.
``trade_id 'x1' is not a non-negative integer``. :func:`check_rows` splits a frame into the
rows that pass and the rejected ones; the reasons are formatted for the rejected rows only, so
good rows pay for the conditions alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import polars as pl

UNSIGNED = r"^\d+$"


ERROR = "error"
LINE = "line"

Rule = tuple[pl.Expr, pl.Expr | str]
"""A condition that holds on bad rows and the reason to give for them."""


class Field(NamedTuple):
    """Parsed value columns (by output name) and the rules of one field, first match wins."""

    values: dict[str, pl.Expr]
    rules: tuple[Rule, ...]

    @property
    def bad(self) -> pl.Expr:
        """True where some rule holds (a rule that cannot be evaluated counts as holding)."""
        return pl.any_horizontal(condition.fill_null(True) for condition, _ in self.rules)

    @property
    def error(self) -> pl.Expr:
        """The reason of the first rule that holds, else null."""
        return first_error(*self.rules)


def check_rows(
    frame: pl.DataFrame, stages: Sequence[Sequence[Field]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``frame`` into good rows, with the fields' values, and bad rows (line, error).

    Stages run in order on the rows that passed the ones before: a row with the wrong number
    of fields is not checked field by field, and a check across fields sees parsed values.
    Within a stage, all failing fields of a row are reported, joined with ``; ``.
    """
    rejected: list[pl.DataFrame] = []
    for fields in stages:
        values = {name: expr for item in fields for name, expr in item.values.items()}
        flags = (
            frame.lazy()
            .with_columns(pl.any_horizontal(item.bad for item in fields).alias("_bad"), **values)
            .collect()
        )
        bad = flags.filter(pl.col("_bad"))
        if not bad.is_empty():
            reasons = join_errors([item.error for item in fields]).alias(ERROR)
            rejected.append(frame.filter(flags["_bad"]).select(LINE, reasons))
        frame = flags.filter(~pl.col("_bad")).drop("_bad")
    if not rejected:
        return frame, pl.DataFrame(schema={LINE: pl.Int64, ERROR: pl.String})
    return frame, pl.concat(rejected).sort(LINE)


def text(name: str) -> pl.Expr:
    """Text column ``name``; readers trim white space before the checks."""
    return pl.col(name)


def missing(value: pl.Expr) -> pl.Expr:
    """True where ``value`` is null or empty text."""
    return value.is_null() | (value == "")


def first_error(*rules: Rule) -> pl.Expr:
    """The message of the first rule whose condition holds, else null."""
    result = pl.lit(None, pl.String)
    for condition, message in reversed(rules):
        result = pl.when(condition).then(_message(message)).otherwise(result)
    return result


def _message(message: pl.Expr | str) -> pl.Expr:
    return pl.lit(message, pl.String) if isinstance(message, str) else message


def join_errors(errors: Sequence[pl.Expr]) -> pl.Expr:
    """All non-null errors joined with ``; ``, or null when there are none."""
    joined = pl.concat_str(list(errors), separator="; ", ignore_nulls=True)
    return pl.when(joined == "").then(pl.lit(None, pl.String)).otherwise(joined)


def integer_field(name: str, output: str | None = None, minimum: int = 0) -> Field:
    """A 64-bit integer of at least ``minimum`` (0 or more) written in decimal digits."""
    value = text(name)
    parsed = value.cast(pl.Int64, strict=False)
    rules: tuple[Rule, ...] = (
        (missing(value), f"{name} is missing"),
        (
            ~value.str.contains(UNSIGNED),
            pl.format(f"{name} '{{}}' is not a non-negative integer", value),
        ),
        (parsed.is_null(), pl.format(f"{name} {{}} does not fit 64 bits", value)),
        (parsed < minimum, pl.format(f"{name} {{}} is below {minimum}", value)),
    )
    return Field({output or name: parsed}, rules)


def optional(field: Field, name: str) -> Field:
    """``field`` for a column that may be left empty: no error there, and null values."""
    present = ~missing(text(name))
    rules = tuple((present & condition, message) for condition, message in field.rules)
    values = {
        output: pl.when(present).then(expr).otherwise(None) for output, expr in field.values.items()
    }
    return Field(values, rules)


def choice_field(name: str, choices: Mapping[str, int], output: str | None = None) -> Field:
    """One of ``choices`` (matched case-insensitively) mapped to its ``Int8`` code."""
    value = text(name)
    parsed = value.str.to_lowercase().replace_strict(
        dict(choices), default=None, return_dtype=pl.Int8
    )
    accepted = ", ".join(choices)
    rules: tuple[Rule, ...] = (
        (missing(value), f"{name} is missing"),
        (parsed.is_null(), pl.format(f"{name} '{{}}' is not one of {accepted}", value)),
    )
    return Field({output or name: parsed}, rules)
