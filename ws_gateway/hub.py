"""The hub: channels, who subscribes to what, and the fan-out. No I/O and no awaiting.

The gateway feeds the hub every update it polls from the bus (:meth:`Hub.candle`,
:meth:`Hub.ticks`), which numbers and encodes it once (a
:class:`~ws_gateway.channels.Delivery`) and adds it to the current *round*; then it calls
:meth:`Hub.flush`, which hands each subscriber of each channel updated in the round the
round's frames of that channel, joined once for all of them. So a round costs one call, and
one socket write, per client, however many updates it holds. Neither step waits for a client:
what a slow one cannot take now stays in its own queue (:mod:`ws_gateway.outbox`).

A feed gap (:meth:`Hub.gap`) is not a channel update: it becomes a notice
(:mod:`ws_gateway.gaps`) handed once to every client of any channel of its instrument, right
after the round so far, so that it reaches them after what came before it on the bus.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from core.alerts import AlertFired
from core.candles import Candle
from core.gaps import FeedGap
from core.ticks import TickBatch
from core.trading_events import TradingRecord
from ws_gateway.alert_feed import AlertFeeds
from ws_gateway.channels import (
    CandleChannel,
    Channel,
    Client,
    Delivery,
    Framing,
    Part,
    TickChannel,
)
from ws_gateway.delay import DelayedCandles
from ws_gateway.gaps import GapNotice, GapNotices
from ws_gateway.private import AccountFeed, AccountFeeds, PrivateFeed, TradingFeeds
from ws_gateway.settings import GatewaySettings
from ws_gateway.wire import ALERTS, CANDLES, TICKS, ChannelKey, ErrorCode, error


class Hub:
    """Every channel of one gateway, the clients subscribed to each, and the fan-out."""

    def __init__(self, settings: GatewaySettings, epoch: str, framing: Framing) -> None:
        self.settings = settings
        self.epoch = epoch
        self.framing = framing
        self.channels: dict[ChannelKey, Channel] = {}
        self.views: dict[tuple[ChannelKey, int], DelayedCandles] = {}
        """The delayed views of candle channels, by channel and delay (:mod:`~ws_gateway.delay`)."""
        self._views_of: dict[ChannelKey, list[DelayedCandles]] = {}
        self._of_instrument: dict[str, list[Channel]] = {}
        self.gaps = GapNotices(settings.gap_notices, framing)
        self.instruments: set[str] = set(settings.instruments)
        """Instruments known to exist: configured, or seen on the bus."""
        private = (epoch, settings.replay_buffer, settings.private_idle_accounts, framing)
        self.trading_feeds = TradingFeeds(*private)
        """The accounts' trading channels (:mod:`~ws_gateway.private`)."""
        self.alert_feeds = AlertFeeds(*private)
        """The accounts' ``alerts`` channels (:mod:`~ws_gateway.alert_feed`)."""
        self.clients: dict[Client, None] = {}
        self._round: dict[Channel, list[Delivery]] = {}
        self.delivered = 0
        """Deliveries handed to clients so far (one per message per subscriber)."""
        self.closed: Counter[int] = Counter()
        """Clients the gateway closed, by close code (4008: too slow...)."""

    # -- channels ----------------------------------------------------------------------------

    def candle_channel(self, instrument: str, label: str) -> CandleChannel | None:
        """The channel of ``instrument`` in interval ``label`` (None: interval not served)."""
        key = ChannelKey(CANDLES, instrument, label)
        channel = self.channels.get(key)
        if channel is None:
            interval = self.settings.serves(label)
            if interval is None:
                return None
            channel = CandleChannel(
                key,
                interval,
                self.epoch,
                self.settings.replay_buffer,
                self.settings.cache_candles,
                self.framing,
            )
            self._add_channel(channel)
        assert isinstance(channel, CandleChannel)
        return channel

    def tick_channel(self, instrument: str) -> TickChannel:
        key = ChannelKey(TICKS, instrument)
        channel = self.channels.get(key)
        if channel is None:
            channel = TickChannel(
                key,
                self.epoch,
                self.settings.replay_buffer,
                self.settings.max_tick_batch,
                self.settings.max_snapshot,
                self.framing,
            )
            self._add_channel(channel)
        assert isinstance(channel, TickChannel)
        return channel

    def _add_channel(self, channel: Channel) -> None:
        self.channels[channel.key] = channel
        self._of_instrument.setdefault(channel.key.instrument, []).append(channel)

    def channels_of(self, instrument: str) -> list[Channel]:
        """The instrument's channels (ticks, candles of each interval) made so far."""
        return self._of_instrument.get(instrument, [])

    def channel(self, key: ChannelKey) -> CandleChannel | TickChannel | None:
        if key.kind == TICKS:
            return self.tick_channel(key.instrument)
        return self.candle_channel(key.instrument, key.interval or "")

    def view(self, key: ChannelKey, delay_s: int, now_ns: int) -> DelayedCandles | None:
        """The shared view of candle channel ``key`` delayed by ``delay_s`` (made, and
        seeded from the live channel, on first use; None: interval not served)."""
        found = self.views.get((key, delay_s))
        if found is not None:
            return found
        live = self.candle_channel(key.instrument, key.interval or "")
        if live is None:
            return None
        view = DelayedCandles(
            key,
            live.interval,
            self.epoch,
            delay_s,
            self.settings.replay_buffer,
            self.settings.cache_candles,
            self.framing,
        )
        view.seed(live, now_ns)
        self.views[key, delay_s] = view
        self._views_of.setdefault(key, []).append(view)
        return view

    def held(self, key: ChannelKey, delay_s: int) -> Channel | None:
        """The channel a client of ``key`` with that delay is subscribed on, if made."""
        if delay_s:
            return self.views.get((key, delay_s))
        return self.channels.get(key)

    # -- clients -----------------------------------------------------------------------------

    def attach(self, client: Client) -> None:
        self.clients[client] = None

    def detach(self, client: Client) -> None:
        """Forget a client everywhere (not during a flush: see ``Session.close``)."""
        self.clients.pop(client, None)
        for channel in self.channels.values():
            channel.subscribers.pop(client, None)
        for view in self.views.values():
            view.subscribers.pop(client, None)
        self.trading_feeds.detach(client)
        self.alert_feeds.detach(client)

    def subscribe(self, client: Client, channel: Channel) -> None:
        channel.subscribers[client] = None

    def unsubscribe(self, client: Client, channel: Channel) -> None:
        channel.subscribers.pop(client, None)

    # -- fan-out -----------------------------------------------------------------------------

    def candle(self, candle: Candle, now_ns: int = 0) -> Delivery | None:
        """Add one candle update to the round (None when it was a replay of a known revision);
        offer it to the channel's delayed views (``now_ns``: the wall clock; without it, the
        views hold the candle until the next :meth:`release`)."""
        self.instruments.add(candle.instrument)
        channel = self.candle_channel(candle.instrument, candle.interval.label)
        if channel is None:
            return None
        delivery = channel.update(candle)
        if delivery is not None:
            self._add(channel, delivery)
            for view in self._views_of.get(channel.key, ()):
                released = view.offer(candle, now_ns)
                if released is not None:
                    self._add(view, released)
        return delivery

    def release(self, now_ns: int) -> int:
        """Add to the round what became due in every delayed view by ``now_ns``; how many
        updates that was."""
        released = 0
        for view in self.views.values():
            for delivery in view.release(now_ns):
                self._add(view, delivery)
                released += 1
        return released

    def ticks(self, batch: TickBatch) -> list[Delivery]:
        """Add one tick batch to the round (one delivery per ``max_tick_batch`` ticks)."""
        if not len(batch):
            return []
        self.instruments.add(batch.instrument)
        channel = self.tick_channel(batch.instrument)
        deliveries = channel.update(batch)
        for delivery in deliveries:
            self._add(channel, delivery)
        return deliveries

    def gap(self, gap: FeedGap) -> GapNotice | None:
        """Tell every client of any channel of ``gap.instrument``, once each, about a feed gap
        (after flushing the round so far); remember it for resumes and snapshots. None when
        the same gap is remembered already (then nobody is told again)."""
        self.instruments.add(gap.instrument)
        channels = self.channels_of(gap.instrument)
        notice = self.gaps.add(gap, [(channel.key, channel.seq) for channel in channels])
        if notice is None:
            return None
        clients: dict[Client, None] = {}
        for channel in channels:
            clients.update(channel.subscribers)
        if clients:
            self.flush()
            for client in clients:
                client.notify(notice)
            self.delivered += len(clients)
        return notice

    def feeds(self, kind: str) -> AccountFeeds[PrivateFeed[Any]]:
        """The feeds that serve private channel ``kind``."""
        feeds: AccountFeeds[Any] = self.alert_feeds if kind == ALERTS else self.trading_feeds
        return feeds

    def alert(self, event: AlertFired) -> None:
        """Add one firing of ``alerts.events`` to the round (its account's ``alerts``
        channel; nothing for a repeat)."""
        for delivery in self.alert_feeds.take(event):
            self._add(delivery.channel, delivery)

    def deliver(self, deliveries: list[Delivery]) -> None:
        """Hand a private feed's own deliveries (not the bus's) to their channels' clients
        now, after the round so far."""
        if deliveries:
            for delivery in deliveries:
                self._add(delivery.channel, delivery)
            self.flush()

    def trading(self, record: TradingRecord) -> AccountFeed | None:
        """Add one record of ``trading.events`` to the round (its account's private channels);
        the feed it broke, if any: its version skipped one (records were lost), so its
        subscribers are told (``unavailable``, ``id`` null, the channel named) to subscribe
        again and hear nothing more of it."""
        deliveries, broken = self.trading_feeds.take(record)
        for delivery in deliveries:
            self._add(delivery.channel, delivery)
        if broken is not None:
            self.flush()
            for kind, channel in broken.channels.items():
                frame = self.framing(
                    error(
                        None,
                        ErrorCode.UNAVAILABLE,
                        f"the {kind} channel missed records of the account: subscribe again",
                        "channel",
                        channel.key,
                    )
                )
                for client in channel.subscribers:
                    client.send_frame(frame)
                channel.subscribers.clear()
        return broken

    def _add(self, channel: Channel, delivery: Delivery) -> None:
        if not channel.subscribers:
            return
        pending = self._round.get(channel)
        if pending is None:
            self._round[channel] = [delivery]
        else:
            pending.append(delivery)
        self.delivered += len(channel.subscribers)

    def flush(self) -> None:
        """Hand the round to the subscribers: one call per client, frames joined once."""
        round_, self._round = self._round, {}
        if len(round_) == 1:
            for channel, deliveries in round_.items():
                data = _joined(deliveries)
                for client in channel.subscribers:
                    client.push(data, deliveries)
            return
        parts: dict[Client, list[Part]] = {}
        for channel, deliveries in round_.items():
            part = (_joined(deliveries), deliveries)
            for client in channel.subscribers:
                held = parts.get(client)
                if held is None:
                    parts[client] = [part]
                else:
                    held.append(part)
        for client, held in parts.items():
            if len(held) == 1:
                client.push(*held[0])
            else:
                client.push_parts(held)

    def heartbeat(self, payload: bytes) -> int:
        """Send ``payload`` (framed once) to every client that was sent nothing since the last
        heartbeat: the others know the connection is alive. Returns how many got it."""
        frame = self.framing(payload)
        sent = 0
        for client in self.clients:
            if client.quiet():
                client.send_frame(frame)
                sent += 1
        return sent


def _joined(deliveries: list[Delivery]) -> bytes:
    if len(deliveries) == 1:
        return deliveries[0].frame
    return b"".join([delivery.frame for delivery in deliveries])
