"""The plans' limits from a TOML file of the operator's (``mdp main-api --plan-limits FILE``),
read as the auth service reads its plans (``auth/plans.py``): data checked whole when loaded,
every refusal a :class:`PlanLimitsError` naming the plan and the field.

The file replaces :data:`~main_api.settings.DEFAULT_PLAN_LIMITS`::

    [plans.pro]                 # one table a plan, by the auth service's plan names
    watchlists = 20             # 0 to 100
    instruments = 100           # per watchlist, 0 to 500
    alerts = 200                # active alerts, 0 to 2000
    webhooks = 5                # optional (5), 0 to 20

    [fallback]                  # optional: the limits of a plan the file does not name
    watchlists = 5              # (default: FALLBACK_LIMITS, the free plan's)
    ...

The hard bounds (:data:`~main_api.settings.MAX_WATCHLISTS` and the others) hold whatever the
file says: a value past one is refused, never clipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from core.toml_file import read_toml, toml_document
from core.toml_tables import table_fault
from main_api.settings import DEFAULT_PLAN_LIMITS, FALLBACK_LIMITS, PlanLimits

MAX_FILE_BYTES: Final = 64 * 1024
"""The largest plan limits file read."""
MAX_PLANS: Final = 256
_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
"""A plan's name, as the auth service's plans spell it."""
_REQUIRED: Final = frozenset({"watchlists", "instruments", "alerts"})
_FIELDS: Final = _REQUIRED | {"webhooks"}
_TOP: Final = frozenset({"plans", "fallback"})


class PlanLimitsError(ValueError):
    """A plan limits file refused: the message names the file's plan and field at fault."""


@dataclass(frozen=True, slots=True)
class PlanLimitsBook:
    """The limits by plan name, and those of a plan not named (by default the built-in
    table's)."""

    plans: Mapping[str, PlanLimits] = field(default_factory=lambda: DEFAULT_PLAN_LIMITS)
    fallback: PlanLimits = FALLBACK_LIMITS


def parse_plan_limits(text: str) -> PlanLimitsBook:
    """The limits of a TOML document (``PlanLimitsError`` says what is wrong with it)."""
    return _book(toml_document(text, "the plan limits file", PlanLimitsError))


def load_plan_limits(path: Path) -> PlanLimitsBook:
    """The limits of the file at ``path``, of at most :data:`MAX_FILE_BYTES`."""
    return _book(read_toml(path, MAX_FILE_BYTES, "the plan limits file", PlanLimitsError))


def _book(document: dict[str, Any]) -> PlanLimitsBook:
    """The limits of a decoded TOML document."""
    unknown = sorted(document.keys() - _TOP)
    if unknown:
        raise PlanLimitsError(f"unknown {', '.join(unknown)} (the file holds plans and fallback)")
    tables = document.get("plans")
    if not isinstance(tables, dict) or not tables:
        raise PlanLimitsError("the plan limits file has no [plans.NAME] tables")
    if len(tables) > MAX_PLANS:
        raise PlanLimitsError(f"at most {MAX_PLANS} plans")
    plans = {name: _limits(f"plan {name}", table) for name, table in tables.items()}
    for name in plans:
        if _NAME.fullmatch(name) is None:
            raise PlanLimitsError(f"plan name {name!r}: lower case letters, digits, - and _")
    fallback = document.get("fallback")
    return PlanLimitsBook(
        MappingProxyType(plans),
        FALLBACK_LIMITS if fallback is None else _limits("fallback", fallback),
    )


def _limits(what: str, table: Any) -> PlanLimits:
    fault = table_fault(table, _REQUIRED, _FIELDS)
    if fault is not None:
        raise PlanLimitsError(f"{what}: {fault}")
    try:
        return PlanLimits(**table)
    except ValueError as exc:  # a hard bound: "plan limit alerts must be 0 to 2000, not 5000"
        raise PlanLimitsError(f"{what}: {str(exc).removeprefix('plan limit ')}") from None
