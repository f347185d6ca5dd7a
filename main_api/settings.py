"""The main API's settings: where it listens and stores, how it checks tokens, and what each
plan may keep (:class:`PlanLimits`, data: a table per plan name, not code)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from access.settings import TokenSettings
from certs.tls import TlsFiles
from core.intervals import DEFAULT_INTERVALS
from main_api.webhooks.settings import WebhookSettings
from web.guard import HttpLimits

DEFAULT_SCHEMA: Final = "main_api"
DEFAULT_PORT: Final = 8040

MAX_WATCHLISTS: Final = 100
"""The most watchlists any plan may allow an account."""
MAX_INSTRUMENTS: Final = 500
"""The most instruments any plan may allow in one watchlist."""
MAX_ALERTS: Final = 2000
"""The most active alerts any plan may allow an account."""
MAX_WEBHOOKS: Final = 20
"""The most webhook endpoints any plan may allow an account."""


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """What an account on one plan may keep: ``watchlists``, ``instruments`` per watchlist,
    active ``alerts`` (an alert that fired once, expired or was deleted no longer counts) and
    ``webhooks`` (endpoints)."""

    watchlists: int
    instruments: int
    alerts: int
    webhooks: int = 5

    def __post_init__(self) -> None:
        bounds = {"watchlists": MAX_WATCHLISTS, "instruments": MAX_INSTRUMENTS,
                  "alerts": MAX_ALERTS, "webhooks": MAX_WEBHOOKS}  # fmt: skip
        for name, most in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
                raise ValueError(f"plan limit {name} must be 0 to {most}, not {value!r}")


DEFAULT_PLAN_LIMITS: Final[Mapping[str, PlanLimits]] = MappingProxyType(
    {
        # the plans of auth/plans.toml
        "demo": PlanLimits(watchlists=2, instruments=20, alerts=5),
        "free": PlanLimits(watchlists=5, instruments=50, alerts=20),
        "pro": PlanLimits(watchlists=50, instruments=200, alerts=500),
    }
)
FALLBACK_LIMITS: Final = PlanLimits(watchlists=5, instruments=50, alerts=20)
"""The limits of a plan the table does not name (an operator's plan): the free plan's."""


@dataclass(frozen=True, slots=True)
class MainApiSettings:
    """The main API process: its database and schema, its token checks (a key set is
    required: every route needs an account's token), the plans' limits, the interval labels
    a profile or a candle alert may name, its HTTP bounds and its webhooks'."""

    database_url: str = field(repr=False)  # its password never prints
    tokens: TokenSettings
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    schema: str = DEFAULT_SCHEMA
    plan_limits: Mapping[str, PlanLimits] = field(default_factory=lambda: DEFAULT_PLAN_LIMITS)
    fallback_limits: PlanLimits = FALLBACK_LIMITS
    intervals: tuple[str, ...] = tuple(interval.label for interval in DEFAULT_INTERVALS)
    http: HttpLimits = field(default_factory=HttpLimits)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    tls: TlsFiles | None = None
    """HTTPS, and mutual TLS with a CA (``docs/security.md``); None: plain HTTP."""

    def limits_of(self, plan: str) -> PlanLimits:
        """The limits of ``plan`` (the fallback for a plan the table does not name)."""
        return self.plan_limits.get(plan, self.fallback_limits)
