"""The lowest and highest price of a stream over the last ``window_s`` seconds, for moves.

:class:`MonotonicWindow` (ticks) keeps two monotonic deques: each price is pushed once and
popped at most once, so a tick costs O(1) amortised however long the window. A revised candle
replaces the price it revises, which a monotonic deque cannot undo, so candle streams use
:class:`ListWindow`: every close in the window (a window holds few candles), scanned.

A window holds the prices with ``ts >= now - window_s`` (the current one included).
"""

from __future__ import annotations

from collections import deque

Point = tuple[int, int]
"""(ts, price in price units)."""


class MonotonicWindow:
    __slots__ = ("highs", "lows", "span_ns")

    def __init__(self, span_ns: int) -> None:
        self.span_ns = span_ns
        self.lows: deque[Point] = deque()
        """Increasing prices: lows[0] is the window's lowest."""
        self.highs: deque[Point] = deque()
        """Decreasing prices: highs[0] is the window's highest."""

    def push(self, ts: int, price: int) -> tuple[int, int]:
        """Add a price; the window's (lowest, highest) including it."""
        lows, highs = self.lows, self.highs
        point = (ts, price)
        while lows and lows[-1][1] >= price:
            lows.pop()
        lows.append(point)
        while highs and highs[-1][1] <= price:
            highs.pop()
        highs.append(point)
        start = ts - self.span_ns
        low = lows[0]
        while low[0] < start:
            lows.popleft()
            low = lows[0]
        high = highs[0]
        while high[0] < start:
            highs.popleft()
            high = highs[0]
        return low[1], high[1]

    def replace_last(self, ts: int, price: int) -> tuple[int, int]:
        raise NotImplementedError("a tick window cannot replace a price")

    def points(self) -> list[list[Point]]:
        return [list(self.lows), list(self.highs)]

    @classmethod
    def from_points(cls, span_ns: int, points: list[list[Point]]) -> MonotonicWindow:
        window = cls(span_ns)
        window.lows.extend(points[0])
        window.highs.extend(points[1])
        return window


class ListWindow:
    __slots__ = ("closes", "span_ns")

    def __init__(self, span_ns: int) -> None:
        self.span_ns = span_ns
        self.closes: deque[Point] = deque()

    def push(self, ts: int, price: int) -> tuple[int, int]:
        self.closes.append((ts, price))
        return self._bounds(ts)

    def replace_last(self, ts: int, price: int) -> tuple[int, int]:
        """The revised close of the latest candle takes the place of the one it revises."""
        if self.closes:
            self.closes.pop()
        return self.push(ts, price)

    def _bounds(self, ts: int) -> tuple[int, int]:
        start = ts - self.span_ns
        closes = self.closes
        while closes[0][0] < start:
            closes.popleft()
        prices = [price for _, price in closes]
        return min(prices), max(prices)

    def points(self) -> list[list[Point]]:
        return [list(self.closes)]

    @classmethod
    def from_points(cls, span_ns: int, points: list[list[Point]]) -> ListWindow:
        window = cls(span_ns)
        window.closes.extend(points[0])
        return window


Window = MonotonicWindow | ListWindow
