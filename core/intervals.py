"""Candle intervals, aligned to the Unix epoch in UTC."""

from __future__ import annotations

import re
from typing import Final

import msgspec

NS_PER_SECOND: Final = 1_000_000_000
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LABEL = re.compile(r"([1-9][0-9]{0,5})([smhd])")


class Interval(msgspec.Struct, frozen=True, order=True):
    """A candle interval of ``ns`` nanoseconds; ``label`` is its canonical name (``"5m"``).

    Buckets are ``[k * ns, (k + 1) * ns)`` since the epoch, so ``1d`` candles open at 00:00 UTC.
    """

    ns: int
    label: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse ``1s``, ``90s``, ``1m``, ``4h``, ``1d``... into an interval.

        Raises ``ValueError`` naming the accepted forms when ``text`` is not one.
        """
        match = _LABEL.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"bad interval {text!r}: expected a count and a unit s, m, h or d (e.g. 1m, 4h)"
            )
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        return cls.of_seconds(seconds)

    @classmethod
    def of_seconds(cls, seconds: int) -> Interval:
        """The interval of ``seconds`` seconds, labelled with its largest whole unit."""
        if seconds <= 0:
            raise ValueError("an interval must be at least one second")
        for unit in ("d", "h", "m", "s"):
            size = _UNITS[unit]
            if seconds % size == 0:
                return cls(seconds * NS_PER_SECOND, f"{seconds // size}{unit}")
        raise AssertionError("unreachable: every whole second count has a unit")

    def bucket_start(self, ts_ns: int) -> int:
        """Open time (ns) of the bucket holding ``ts_ns``."""
        return ts_ns - ts_ns % self.ns

    def __str__(self) -> str:
        return self.label


DEFAULT_INTERVALS: Final = tuple(
    Interval.parse(label) for label in ("1s", "1m", "5m", "15m", "1h", "4h", "1d")
)


def parse_intervals(labels: list[str] | tuple[str, ...]) -> tuple[Interval, ...]:
    """Parse, de-duplicate and sort interval labels (finest first)."""
    return tuple(sorted({Interval.parse(label) for label in labels}))
