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
    ``max_trades`` of them), oldest first."""

    def __init__(self, model: QueueModel) -> None:
        self._model = model
        self._trades: deque[tuple[int, Decimal, Decimal]] = deque(maxlen=model.max_trades)

    def add(self, ts: int, price: Decimal, size: Decimal) -> None:
        """Remember one trade and forget those older than the look-back before it."""
        self._trades.append((ts, price, size))
        horizon = ts - self._model.lookback_ns
        while self._trades[0][0] < horizon:
            self._trades.popleft()

    def queue_ahead(self, price: Decimal, ts: int) -> Decimal:
        """The size estimated to rest ahead of an order that joins ``price`` at ``ts``:
        ``fraction`` times the size traded at exactly ``price`` in ``[ts - lookback, ts)``."""
        since = ts - self._model.lookback_ns
        traded = Decimal(0)
        for at, trade_price, size in self._trades:
            if since <= at < ts and trade_price == price:
                traded = EXACT.add(traded, size)
        return EXACT.multiply(traded, self._model.fraction)
