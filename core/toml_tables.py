"""A table of a TOML data file (plans, plan limits) checked for its fields, one way for every
such file: what is wrong said in one phrase, for the caller's error to carry."""

from __future__ import annotations

from collections.abc import Set
from typing import Any


def table_fault(table: Any, required: Set[str], allowed: Set[str]) -> str | None:
    """What is wrong with ``table``'s fields (``must be a table``, ``missing a, b``,
    ``unknown c``, joined by ``; ``), or None when it holds every ``required`` name and only
    ``allowed`` ones."""
    if not isinstance(table, dict):
        return "must be a table"
    missing = sorted(required - table.keys())
    unknown = sorted(table.keys() - allowed)
    problems = [f"missing {', '.join(missing)}"] * bool(missing)
    problems += [f"unknown {', '.join(unknown)}"] * bool(unknown)
    return "; ".join(problems) or None
