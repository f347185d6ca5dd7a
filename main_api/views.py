"""What the routes answer: the user's things as the store reads them (JSON by msgspec;
decimals as strings, times in UTC nanoseconds)."""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

from core.alerts import AlertSpec, Arming, Condition, Source


class AlertStatus(enum.StrEnum):
    ACTIVE = "active"
    FIRED = "fired"
    """A ``once`` alert that fired: over."""
    EXPIRED = "expired"
    """Its ``expires_at`` has passed (read as such from that moment)."""
    DELETED = "deleted"
    """Deleted by its owner; kept so that its fired history stays readable."""


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    display_name: str
    time_zone: str
    default_interval: str


class Watchlist(msgspec.Struct, frozen=True, kw_only=True):
    watchlist_id: str
    name: str
    instruments: list[str]
    position: int
    """Its place among the account's watchlists (0 first)."""
    created_at: int
    updated_at: int


class AlertView(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: str
    instrument: str
    condition: Condition
    threshold: Decimal
    source: Source
    interval: str | None
    window_s: int
    arming: Arming
    cooldown_s: int
    expires_at: int | None
    status: AlertStatus
    created_at: int
    updated_at: int

    @classmethod
    def of(
        cls, spec: AlertSpec, status: AlertStatus, created_at: int, updated_at: int
    ) -> AlertView:
        return cls(
            alert_id=spec.alert_id, instrument=spec.instrument, condition=spec.condition,
            threshold=spec.threshold, source=spec.source, interval=spec.interval,
            window_s=spec.window_s, arming=spec.arming, cooldown_s=spec.cooldown_s,
            expires_at=spec.expires_at, status=status, created_at=created_at,
            updated_at=updated_at,
        )  # fmt: skip


class FiringFields(msgspec.Struct, frozen=True, kw_only=True):
    """What a firing says: ``alerts.events``' ``AlertFired`` but its account (also the data of
    a webhook's event, :mod:`main_api.webhooks.event`)."""

    fire_id: str
    alert_id: str
    instrument: str
    condition: Condition
    threshold: Decimal
    price: Decimal
    ts: int
    trade_id: int | None
    candle_open_time: int | None
    gap: bool


class Firing(FiringFields, frozen=True, kw_only=True):
    """One firing of an alert, as ``alerts.events`` said it; ``seq`` orders the alert's
    history."""

    seq: int


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """A firing told to its owner: ``read`` once marked so."""

    seq: int
    fire_id: str
    alert_id: str
    instrument: str
    condition: Condition
    threshold: Decimal
    price: Decimal
    ts: int
    gap: bool
    read: bool
    read_at: int | None
