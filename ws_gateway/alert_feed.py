"""The ``alerts`` channel, sans I/O: one account's fired alerts.

The gateway reads ``alerts.events`` (:class:`~core.alerts.AlertFired`, keyed by account). Each
account someone subscribed to has an :class:`AlertFeed`: its ``alerts`` channel (sequence
numbers and a replay buffer, as every private channel: :class:`~ws_gateway.private.
AccountChannel`) and the ``fire_id`` it knows. A firing whose ``fire_id`` the feed knows is a
repeat (a replay, a restart or a second evaluator) and is dropped.

**The snapshot/live join.** Firings carry no gapless number: a snapshot
(:class:`~core.alert_reads.AlertsSnapshot`) is current to the *set* of ``fire_id`` it names
(the account's newest recorded ones). A feed starts *unbased*: it keeps the account's live
firings (:data:`PENDING_FIRINGS` at most) while the first subscriber's snapshot is read, and
it starts with the account's firings the bus carried shortly before the feed was made
(:attr:`AlertFeeds.recent`; a firing is recorded before the outbox publishes it, so a
snapshot read after names them, unless the database the gateway reads is a copy that lags
behind the one written). :meth:`AlertFeed.base` sends the kept firings the snapshot does not
name, numbered from 1; the snapshot's names and every firing sent since are what the feed
knows. A later subscriber reads a snapshot of its own: one that names a firing the feed does
not know is ahead of the bus (:data:`~ws_gateway.private.WAIT`: the firing is on its way;
should it not come within the wait, the feed sends it from the snapshot itself,
:meth:`AlertFeed.settle`); otherwise :meth:`AlertFeed.join_point` is the seq of the newest
firing sent that it names: the firings sent before it must be named by it and those after
not (else read again: the main API recorded them out of order for a moment), so the
snapshot goes out with that ``seq`` and the replay buffer sends what came after it.

**Bounds.** A feed knows :data:`KNOWN_FIRE_IDS` ``fire_id`` besides its replay buffer (a
repeat older than that is sent again); at most ``max_idle`` feeds are kept that nobody
subscribes to; :data:`RECENT_FIRINGS` firings of accounts without a feed are remembered, and
a new feed starts with at most :data:`RECENT_PER_FEED` of its account's.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Final

from core.alert_reads import MAX_SNAPSHOT, AlertsSnapshot, fired_json
from core.alerts import AlertFired
from ws_gateway.channels import Delivery, Framing
from ws_gateway.private import WAIT, AccountFeeds, PrivateFeed, Wait
from ws_gateway.wire import ALERTS

PENDING_FIRINGS: Final = 1000
"""Live firings an unbased feed keeps while its first snapshot is read (the oldest go
first)."""
KNOWN_FIRE_IDS: Final = 2 * MAX_SNAPSHOT
"""The ``fire_id`` a feed knows besides those of its replay buffer: a snapshot's and the
newest sent."""
RECENT_FIRINGS: Final = 10_000
"""Firings of accounts without a feed remembered (the newest; a few hundred bytes each), for
a feed made soon after: they may not be recorded yet when its snapshot is read."""
RECENT_PER_FEED: Final = 100
"""The most of those a new feed starts with (its account's newest): well within the
:data:`~core.alert_reads.MAX_SNAPSHOT` newest a snapshot names, so one it does not name is
one not recorded yet, not one recorded long ago."""


class AlertFeed(PrivateFeed[AlertsSnapshot]):
    """One account's ``alerts`` channel (see the module's doc)."""

    def __init__(self, account: int, epoch: str, replay_buffer: int, framing: Framing) -> None:
        super().__init__((ALERTS,), account, epoch, replay_buffer, framing)
        self.channel = self.channels[ALERTS]
        self.pending: OrderedDict[str, AlertFired] = OrderedDict()
        """Live firings kept while unbased, by ``fire_id``."""
        self.known: OrderedDict[str, None] = OrderedDict()
        """The ``fire_id`` of the base snapshot and of the firings sent, oldest first."""
        self._capacity = KNOWN_FIRE_IDS + replay_buffer
        self.sent: deque[tuple[int, str]] = deque(maxlen=replay_buffer)
        """The seq and ``fire_id`` of the newest firings sent."""
        self.forgot = False
        """Whether :attr:`sent` has let some go (it no longer reaches back to the base)."""

    def take(self, event: AlertFired) -> list[Delivery]:
        """The deliveries of one live firing ([] for a repeat, or while unbased)."""
        fire_id = event.fire_id
        if fire_id in self.known or fire_id in self.pending:
            self.repeats += 1
            return []
        if not self.based:
            self.pending[fire_id] = event
            if len(self.pending) > PENDING_FIRINGS:
                self.pending.popitem(last=False)
            return []
        return [self._apply(event)]

    def _know(self, fire_id: str) -> None:
        self.known[fire_id] = None
        if len(self.known) > self._capacity:
            self.known.popitem(last=False)

    def _apply(self, event: AlertFired) -> Delivery:
        delivery = self.channel.deliver(fired_json(event))
        self._know(event.fire_id)
        if len(self.sent) == self.sent.maxlen:
            self.forgot = True
        self.sent.append((self.channel.seq, event.fire_id))
        return delivery

    # -- snapshots -----------------------------------------------------------------------------

    def base(self, snapshot: AlertsSnapshot) -> list[Delivery]:
        assert not self.based
        for fire_id in snapshot.fire_ids:
            self._know(fire_id)
        pending, self.pending = self.pending, OrderedDict()
        self.based = True
        return [
            self._apply(event) for fire_id, event in pending.items() if fire_id not in self.known
        ]

    def ready(self, snapshot: AlertsSnapshot) -> bool:
        return all(fire_id in self.known for fire_id in snapshot.fire_ids)

    def join_point(self, kind: str, snapshot: AlertsSnapshot) -> int | Wait | None:
        assert self.based
        if not self.ready(snapshot):
            return WAIT
        named = set(snapshot.fire_ids)
        point: int | None = None
        for seq, fire_id in reversed(self.sent):
            if fire_id in named:
                point = seq if point is None else point
            elif point is not None:
                return None  # sent before a named one, yet not named: read again
        if point is not None:
            return point
        if self.forgot:
            return None  # the snapshot names none of what is remembered: it is too old
        return self.sent[0][0] - 1 if self.sent else self.channel.seq

    def settle(self, snapshot: AlertsSnapshot) -> list[Delivery]:
        """The firings ``snapshot`` names that the bus did not bring within the wait (recorded,
        but published late or not yet: an evaluator stopped between the two, the bus away)
        are sent from the snapshot itself (its ``named`` firings, whatever it shows), oldest
        first, to every subscriber; the bus's copy is a repeat when it comes. Only a reader
        that does not hand its named firings leaves one merely known."""
        unknown = [fire_id for fire_id in snapshot.fire_ids if fire_id not in self.known]
        shown = {event.fire_id: event for event in (*snapshot.named, *snapshot.firings)}
        out: list[Delivery] = []
        for fire_id in unknown:
            event = shown.get(fire_id)
            if event is None:
                self._know(fire_id)
            else:
                out.append(self._apply(event))
        return out

    def snapshot_message(self, kind: str, seq: int, reset: bool, snapshot: AlertsSnapshot) -> bytes:
        items = [fired_json(event) for event in snapshot.firings]
        extra = b',"unread":' + str(snapshot.unread).encode()
        return self.channel.frames.snapshot(seq, reset, items, extra)


class AlertFeeds(AccountFeeds[AlertFeed]):
    """Every account's ``alerts`` feed; and the newest firings of accounts without one
    (:attr:`recent`), handed to a feed when it is made."""

    def __init__(self, epoch: str, replay_buffer: int, max_idle: int, framing: Framing) -> None:
        super().__init__(epoch, replay_buffer, max_idle, framing)
        self.recent: deque[AlertFired] = deque(maxlen=RECENT_FIRINGS)

    def _make(self, account: int, epoch: str) -> AlertFeed:
        feed = AlertFeed(account, epoch, self.replay_buffer, self.framing)
        held = [event for event in self.recent if event.account == account]
        for event in held[-RECENT_PER_FEED:]:
            feed.take(event)
        return feed

    def take(self, event: AlertFired) -> list[Delivery]:
        """The deliveries of one live firing (to its account's feed, if it has one)."""
        feed = self.feeds.get(event.account)
        if feed is None:
            self.recent.append(event)
            return []
        return feed.take(event)
