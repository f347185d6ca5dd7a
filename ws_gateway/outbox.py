"""What waits for one lagging client, sans I/O; where its candle updates conflate.

While a client keeps up, every round is written to its socket at once and nothing waits
here. Once it lags (its socket holds more than the allowed bytes), what it is sent goes to
this queue instead, which a writer empties as the socket drains. In the queue, a newer update
of a candle (same channel and open time) replaces the older one, moving to the back so that
sequence numbers still rise; before the next message of that channel the client gets a
``conflated`` message saying how many updates it lost that way. Ticks and replies never
conflate.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable

from telemetry.metrics import GATEWAY_CONFLATIONS
from ws_gateway.channels import Channel, Delivery
from ws_gateway.wire import conflated

Item = Delivery | bytes
"""A channel's delivery, or a frame of this client's own (a reply, a snapshot...)."""


class Outbox:
    """One client's pending queue (empty while the client keeps up)."""

    __slots__ = ("_framing", "_unique", "dropped", "lagging_since", "pending")

    def __init__(self, framing: Callable[[bytes], bytes]) -> None:
        self._framing = framing
        self.pending: OrderedDict[object, Item] = OrderedDict()
        self.dropped: dict[Channel, int] = {}
        """Per channel, updates conflated away and not yet announced."""
        self.lagging_since: float | None = None
        self._unique = itertools.count()

    def __len__(self) -> int:
        return len(self.pending)

    def defer(self, items: Iterable[Item], now: float) -> None:
        """Queue ``items``, conflating candle updates."""
        pending = self.pending
        if not pending:
            self.lagging_since = now
        for item in items:
            if isinstance(item, Delivery) and item.key is not None:
                key = (item.channel, item.key)
                if pending.pop(key, None) is not None:
                    self.dropped[item.channel] = self.dropped.get(item.channel, 0) + 1
                pending[key] = item
            else:
                pending[next(self._unique)] = item

    def take(self) -> bytes:
        """Every pending frame, joined, with ``conflated`` notices where updates were lost."""
        frames: list[bytes] = []
        dropped = self.dropped
        for item in self.pending.values():
            if isinstance(item, Delivery):
                if dropped and item.channel in dropped:
                    count = dropped.pop(item.channel)
                    frames.append(self._framing(conflated(item.channel.key, count)))
                    GATEWAY_CONFLATIONS.inc(count)
                frames.append(item.frame)
            else:
                frames.append(item)
        self.pending.clear()
        self.lagging_since = None
        return b"".join(frames)

    def clear(self) -> None:
        self.pending.clear()
        self.dropped.clear()
        self.lagging_since = None
