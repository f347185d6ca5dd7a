"""Who may read what: the history API checks every token itself, through the platform's one
token gate (:class:`web.tokens.TokenGate`: verified, never anonymous when refused, revocations
from ``auth.events``), and adds what a history read may see.

:class:`Window` is what a grant lets one read see, in time: candles and ticks no older than
the plan's depth (cut at 00:00 UTC ``history_days`` days before today: clamped, not refused),
and, for a delayed plan, no candle that closes after ``now - delay`` and no tick after it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from access.grant import Grant
from charting.settings import ApiSettings
from core.intervals import NS_PER_SECOND, Interval
from web.problems import ProblemError
from web.tokens import TokenGate

DAY_NS: Final = 86_400 * NS_PER_SECOND
GUARDED_PREFIXES: Final = ("/v1/", "/udf/")
"""The paths that read market data; the page, its config, the docs and health stay open."""


@dataclass(frozen=True, slots=True)
class Window:
    """The time a grant lets a request read: opens from ``floor_ns``; for a delayed plan,
    candles that close by ``cutoff_ns`` and ticks at or before it (None: real time)."""

    floor_ns: int
    cutoff_ns: int | None

    @classmethod
    def of(cls, grant: Grant, now_ns: int) -> Window:
        days = min(grant.history_days, now_ns // DAY_NS)
        floor = (now_ns - now_ns % DAY_NS) - days * DAY_NS
        cutoff = None if grant.delay_s == 0 else now_ns - grant.delay_s * NS_PER_SECOND
        return cls(max(floor, 0), cutoff)

    def start(self, start: int) -> int:
        """The first open time served of a range asked from ``start``."""
        return max(start, self.floor_ns)

    def candle_end(self, end: int, interval: Interval) -> int:
        """The end (exclusive, open times) of a range asked until ``end``: candles whose
        close time is later than the cutoff are left out."""
        if self.cutoff_ns is None:
            return end
        return min(end, interval.bucket_start(self.cutoff_ns))

    def tick_end(self, end: int) -> int:
        """The end (exclusive) of a range of ticks asked until ``end``."""
        return end if self.cutoff_ns is None else min(end, self.cutoff_ns + 1)


def forbidden(parameter: str, instrument: str, grant: Grant) -> ProblemError:
    """403: the instrument is outside the grant's plan."""
    return ProblemError(
        403,
        "instrument-not-in-plan",
        "Forbidden",
        f"{parameter}: {instrument} is not in the plan {grant.plan}",
        parameter,
    )


class Gate(TokenGate):
    """The history API's token checks (:class:`~web.tokens.TokenGate`) and its windows."""

    def __init__(self, settings: ApiSettings) -> None:
        tokens = dataclasses.replace(settings.tokens, clock=settings.clock)  # one clock
        super().__init__(tokens, "history-api")
        self.settings = settings

    def window(self, grant: Grant) -> Window:
        return Window.of(grant, self.settings.clock())
