"""Ticks refused by the candle engine, with the reason (they go to ``md.ticks.rejected``)."""

from __future__ import annotations

import enum

import msgspec

from core.ticks import Tick


class RejectReason(enum.StrEnum):
    LATE_BEYOND_HORIZON = "late_beyond_horizon"


class RejectedTick(msgspec.Struct, frozen=True):
    """A tick the engine did not apply, why, and a human-readable detail."""

    tick: Tick
    reason: RejectReason
    detail: str
