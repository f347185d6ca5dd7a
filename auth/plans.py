"""Plans: what a principal may do, as data (``auth/plans.toml``, or a file of the operator's).

A :class:`Plan` is a frozen value checked when built; a :class:`PlanBook` holds the plans by
name and says which one an anonymous client gets and which one a new account starts on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from core.toml_file import read_toml, toml_document
from core.toml_tables import table_fault

DELAY_S: Final = 15 * 60
"""How far a delayed plan's data lags, in seconds: 15 minutes, as exchanges license it."""

DataMode = Literal["realtime", "delayed"]

_PATTERN: Final = re.compile(r"[A-Z0-9_*]{1,32}:[A-Z0-9_./*-]{1,64}|\*")
"""An instrument pattern: an id (``VENUE:SYMBOL``) in which ``*`` matches any run of
characters, or ``*`` alone (every instrument). ``fnmatch``'s other wildcards (``?``, ``[``)
cannot occur, so its ``fnmatchcase`` matches exactly these."""
_NAME: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_PATTERNS: Final = 256
MAX_FILE_BYTES: Final = 1024 * 1024
"""The largest plan file read (a plan of :data:`MAX_PATTERNS` patterns is some 25 KB)."""
_FIELDS: Final = frozenset(
    {
        "instruments",
        "data",
        "history_days",
        "ws_subscriptions",
        "ws_connections",
        "requests_per_minute",
        "trading",
    }
)


class PlanError(ValueError):
    """A plan file or plan is malformed (the message names the plan and the field)."""


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    instruments: tuple[str, ...]
    data: DataMode
    history_days: int
    ws_subscriptions: int
    ws_connections: int
    requests_per_minute: int
    trading: bool

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.name) is None:
            raise PlanError(f"plan name {self.name!r}: lower case letters, digits, - and _")
        if not 0 < len(self.instruments) <= MAX_PATTERNS:
            raise PlanError(f"plan {self.name}: 1 to {MAX_PATTERNS} instrument patterns")
        for pattern in self.instruments:
            if not isinstance(pattern, str) or _PATTERN.fullmatch(pattern) is None:
                raise PlanError(
                    f"plan {self.name}: instrument pattern {pattern!r} must look like"
                    " VENUE:SYMBOL in upper case, with * for any run of characters"
                )
        if self.data not in ("realtime", "delayed"):
            raise PlanError(f"plan {self.name}: data must be realtime or delayed")
        counts = (
            ("history_days", self.history_days),
            ("ws_subscriptions", self.ws_subscriptions),
            ("ws_connections", self.ws_connections),
            ("requests_per_minute", self.requests_per_minute),
        )
        for field, value in counts:
            if type(value) is not int or not 0 <= value <= 1_000_000:
                raise PlanError(f"plan {self.name}: {field} must be a whole number 0..1000000")
        if type(self.trading) is not bool:
            raise PlanError(f"plan {self.name}: trading must be true or false")

    @property
    def delay_s(self) -> int:
        """How far the plan's data lags, in seconds (0: real time)."""
        return DELAY_S if self.data == "delayed" else 0

    def covers(self, instrument: str) -> bool:
        """Whether ``instrument`` matches one of the plan's patterns."""
        return any(fnmatchcase(instrument, pattern) for pattern in self.instruments)


@dataclass(frozen=True, slots=True)
class PlanBook:
    """The plans by name; ``anonymous``: the plan of a client without a token (None: anonymous
    access is off); ``signup``: the plan of a new account."""

    plans: dict[str, Plan]
    anonymous: str | None
    signup: str

    def __post_init__(self) -> None:
        for role, name in (("anonymous", self.anonymous), ("signup", self.signup)):
            if name is not None and name not in self.plans:
                raise PlanError(f"the {role} plan {name!r} is not among the plans")

    def get(self, name: str) -> Plan:
        """The plan ``name`` (``KeyError`` when there is none)."""
        return self.plans[name]

    def with_anonymous(self, name: str | None) -> PlanBook:
        """The same plans with ``name`` for anonymous clients (None: anonymous access off;
        ``PlanError`` when there is no such plan)."""
        return PlanBook(self.plans, name, self.signup)


def parse_plans(text: str) -> PlanBook:
    """The plans of a TOML document (``PlanError`` says what is wrong with it)."""
    return _book(toml_document(text, "the plan file", PlanError))


def _book(document: dict[str, Any]) -> PlanBook:
    """The plans of a decoded TOML document."""
    tables = document.get("plans")
    if not isinstance(tables, dict) or not tables:
        raise PlanError("the plan file has no [plans.NAME] tables")
    plans = {name: _plan(name, table) for name, table in tables.items()}
    anonymous = document.get("anonymous")
    signup = document.get("signup")
    if anonymous is not None and not isinstance(anonymous, str):
        raise PlanError("anonymous must name a plan")
    if not isinstance(signup, str):
        raise PlanError("signup must name a plan")
    return PlanBook(plans, anonymous, signup)


def load_plans(path: Path | None = None) -> PlanBook:
    """The plans of the file at ``path`` (of at most :data:`MAX_FILE_BYTES`), else the ones
    shipped with the package."""
    if path is None:
        return parse_plans(resources.files(__package__).joinpath("plans.toml").read_text("utf-8"))
    return _book(read_toml(path, MAX_FILE_BYTES, "the plan file", PlanError))


def _plan(name: str, table: Any) -> Plan:
    fault = table_fault(table, _FIELDS, _FIELDS)
    if fault is not None:
        raise PlanError(f"plan {name}: {fault}")
    instruments = table["instruments"]
    if not isinstance(instruments, list):
        raise PlanError(f"plan {name}: instruments must be a list of patterns")
    return Plan(name=name, **(table | {"instruments": tuple(instruments)}))
