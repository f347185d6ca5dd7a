"""Feed gaps: spans of venue time in which trades of an instrument may be missing.

A venue connector publishes a :class:`FeedGap` on ``md.ticks`` (keyed by the instrument, like
its ticks) whenever its connection was down or the venue's trade numbering skipped. The candle
engine flags every candle whose interval overlaps a gap, so that "no trades happened" (an
empty or quiet candle) and "the feed was down" (a flagged candle) stay distinct in storage,
the history API and the WebSocket protocol.
"""

from __future__ import annotations

import enum

import msgspec

from core.instruments import validate_instrument


class GapReason(enum.StrEnum):
    """Why trades may be missing."""

    DISCONNECTED = "disconnected"
    """The connection dropped, timed out or was refused; the span is the time it was down."""

    SEQUENCE = "sequence"
    """The venue's trade numbering skipped and the missing trades never came."""


class FeedGap(msgspec.Struct, frozen=True, kw_only=True):
    """Trades of ``instrument`` with ``start_ns <= ts_event < end_ns`` may be missing.

    Times are venue time (the ticks' ``ts_event``), UTC nanoseconds. A connector sets the span
    from the trades it did see on either side, both included: the last trade before the
    gap at ``start_ns`` and the first one after it at ``end_ns - 1``, because missing trades
    may share their timestamps. ``detail`` says what was seen, e.g. ``"trade ids 101..104
    missing"``; ``ts_recv`` is when the connector noticed (wall clock, UTC nanoseconds).
    """

    instrument: str
    start_ns: int
    end_ns: int
    reason: GapReason
    detail: str = ""
    ts_recv: int = 0

    def __post_init__(self) -> None:
        validate_instrument(self.instrument)
        if self.start_ns <= 0:
            raise ValueError(f"gap start_ns must be positive UTC nanoseconds, got {self.start_ns}")
        if self.end_ns <= self.start_ns:
            raise ValueError(
                f"gap end_ns must be after start_ns, got {self.start_ns}..{self.end_ns}"
            )
        if self.ts_recv < 0:
            raise ValueError(f"gap ts_recv must not be negative, got {self.ts_recv}")

    def overlaps(self, start_ns: int, end_ns: int) -> bool:
        """Whether the half-open span ``[start_ns, end_ns)`` (a candle's) meets this gap."""
        return self.start_ns < end_ns and start_ns < self.end_ns
