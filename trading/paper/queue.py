"""The queue model's memory: the recent trades of one instrument, and the queue they imply.

See :class:`~trading.paper.settings.QueueModel` for the model and ``docs/trading.md``
("Paper venue") for why it is this one.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from trading.domain.exact import EXACT
from trading.paper.settings import QueueModel


class TradeHistory:
    """The trades of one instrument within the queue model's look-back (at most
    ``max_trades`` of them), kept per price so that a queue estimate reads only the trades
    at its price."""

    def __init__(self, model: QueueModel) -> None:
        self._model = model
        self._arrivals: deque[tuple[int, Decimal]] = deque()
        """(ts, price) of every trade kept, oldest first."""
        self._at: dict[Decimal, deque[tuple[int, Decimal]]] = {}
        """Price -> (ts, size) of the trades kept at that price, oldest first."""

    def add(self, ts: int, price: Decimal, size: Decimal) -> None:
        """Remember one trade and forget those older than the look-back before it."""
        if len(self._arrivals) == self._model.max_trades:
            self._forget_oldest()
        self._arrivals.append((ts, price))
        self._at.setdefault(price, deque()).append((ts, size))
        horizon = ts - self._model.lookback_ns
        while self._arrivals[0][0] < horizon:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        _, price = self._arrivals.popleft()
        level = self._at[price]
        level.popleft()
        if not level:
            del self._at[price]

    def queue_ahead(self, price: Decimal, ts: int) -> Decimal:
        """The size estimated to rest ahead of an order that joins ``price`` at ``ts``:
        ``fraction`` times the size traded at exactly ``price`` in ``[ts - lookback, ts)``."""
        since = ts - self._model.lookback_ns
        traded = Decimal(0)
        for at, size in self._at.get(price, ()):
            if since <= at < ts:
                traded = EXACT.add(traded, size)
        return EXACT.multiply(traded, self._model.fraction)
