"""Private channels, sans I/O: what every account feed has (:class:`PrivateFeed`: its
channels, numbered and with replay buffers, and the snapshot/live join the session drives;
:class:`AccountFeeds`: the feeds of the accounts someone subscribed to, bounded), and the
trading feed, one account's ``orders``, ``fills`` and ``positions``. The ``alerts`` feed is
:mod:`ws_gateway.alert_feed`.

The gateway reads ``trading.events`` (:class:`~core.trading_events.TradingRecord`, keyed by
account). Each account someone subscribed to has an :class:`AccountFeed`: its three channels
(sequence numbers and replay buffers, as candle channels have: :class:`~ws_gateway.channels.
Channel`), the positions it folds each fill onto (:meth:`core.positions.Position.traded`, the
trading domain's own arithmetic) and where in the account's stream it is.

**The snapshot/live join.** A feed starts *unbased*: it keeps the account's live records
(:data:`PENDING_RECORDS` at most) while the first subscriber's snapshot is read. The snapshot
(:class:`~core.trading_reads.AccountSnapshot`) says the notification id and the stream version
it is current to: :meth:`AccountFeed.base` drops the kept records at or below it, numbers the
rest from 1, and from then on every record at or below what the feed applied is a repeat
(dropped). The records the bus carried before the feed was made were not kept, so the feed
starts with a *floor*, the newest version of the account seen until then
(:attr:`TradingFeeds.seen`): a first snapshot below it comes from read models that have not
caught up yet, and is read again rather than based on (its next record would skip versions).
Later subscribers read a snapshot of their own: :meth:`AccountFeed.join_point` finds the
sequence number of each channel as of that snapshot's version (the feed remembers it for its
newest records), so the snapshot goes out with that ``seq`` and the replay buffer sends what
came after it; a snapshot newer than the feed (the read models ahead of the bus) is
:data:`WAIT`: the records up to it are on their way. Versions are gapless per account, so a
record whose version skips one means records were lost (sent before the gateway listened): the
feed is dropped (:meth:`TradingFeeds.take` says whose channels) and the clients subscribe
again.

**Bounds.** A feed's replay buffers and version marks hold ``replay_buffer`` records; at most
``max_idle`` feeds are kept that nobody subscribes to (the least recently used go first);
records of accounts without a feed are not kept at all.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from core.positions import Position
from core.trading_events import ORDER_EVENTS, OrderFilled, TradingRecord
from core.trading_reads import AccountSnapshot, event_json, fill_json, position_json
from ws_gateway.channels import Channel, Client, Delivery, Framing
from ws_gateway.wire import (
    FILLS,
    ORDERS,
    POSITIONS,
    TRADING_KINDS,
    ChannelKey,
    PrivateFrames,
)

PENDING_RECORDS: Final = 1000
"""Live records an unbased feed keeps while its first snapshot is read."""

SEEN_ACCOUNTS: Final = 100_000
"""Accounts without a feed whose newest version on the bus is remembered (16 bytes or so
each): an account not seen among the last this many is taken as unseen."""


class Wait(enum.Enum):
    WAIT = "wait"


WAIT: Final = Wait.WAIT
"""The snapshot is newer than the feed: wait for the records up to it."""

S = TypeVar("S")
"""The snapshot a feed is based on and joined with."""


class AccountChannel(Channel):
    """One private channel of one account."""

    def __init__(self, kind: str, account: int, epoch: str, replay_buffer: int, framing: Framing):
        super().__init__(ChannelKey(kind, ""), epoch, replay_buffer, framing)
        self.frames: PrivateFrames = PrivateFrames(kind, account, epoch)
        self.account = account

    def deliver(self, body: bytes) -> Delivery:
        return self._deliver(body, None)


class PrivateFeed(Generic[S]):
    """One account's feed of one kind: its channels and where it is. The session drives the
    join (``ws_gateway.session_core``): a new feed keeps the live records while its first
    snapshot is read, :meth:`base` starts it from that snapshot, and each later subscriber's
    snapshot is joined at :meth:`join_point` (:data:`WAIT` until :meth:`ready`)."""

    def __init__(self, kinds: tuple[str, ...], account: int, epoch: str, replay_buffer: int,
                 framing: Framing) -> None:  # fmt: skip
        self.account = account
        self.epoch = epoch
        self.channels = {
            kind: AccountChannel(kind, account, epoch, replay_buffer, framing) for kind in kinds
        }
        self.based = False
        self.repeats = 0
        """Live records dropped as repeats (already applied, or in the base snapshot)."""

    @property
    def subscribed(self) -> bool:
        return any(channel.subscribers for channel in self.channels.values())

    def base(self, snapshot: S) -> list[Delivery] | None:
        """Start the unbased feed from its first snapshot: the deliveries of the kept records
        it does not hold; None when it cannot (read again)."""
        raise NotImplementedError

    def ready(self, snapshot: S) -> bool:
        """Whether the feed has applied every live record ``snapshot`` holds."""
        raise NotImplementedError

    def join_point(self, kind: str, snapshot: S) -> int | Wait | None:
        """The seq of channel ``kind`` as of ``snapshot`` (based feeds only); :data:`WAIT`
        when the snapshot is newer than the feed; None when the feed cannot tell (read
        again)."""
        raise NotImplementedError

    def settle(self, snapshot: S) -> list[Delivery]:
        """The live records ``snapshot`` holds did not all come within the wait: what the
        feed sends of them itself (by default nothing: the snapshot is read again)."""
        return []

    def snapshot_message(self, kind: str, seq: int, reset: bool, snapshot: S) -> bytes:
        """The ``snapshot`` message of channel ``kind`` current to ``seq``."""
        raise NotImplementedError


F = TypeVar("F", bound=PrivateFeed[Any])


class AccountFeeds(Generic[F]):
    """Every account's feed of one kind, bounded: feeds nobody subscribes to are kept for
    resumes, at most ``max_idle`` of them (the least recently used dropped first)."""

    def __init__(self, epoch: str, replay_buffer: int, max_idle: int, framing: Framing) -> None:
        self.epoch = epoch
        self.replay_buffer = replay_buffer
        self.max_idle = max_idle
        self.framing = framing
        self.feeds: dict[int, F] = {}
        self.idle: OrderedDict[int, None] = OrderedDict()
        self.held: dict[Client, set[int]] = {}
        """The accounts each client holds a channel of (so a client leaves in O(1))."""
        self._generation = 0

    def _make(self, account: int, epoch: str) -> F:
        """A new feed of ``account`` (unbased)."""
        raise NotImplementedError

    def get(self, account: int) -> F | None:
        return self.feeds.get(account)

    def feed(self, account: int) -> F:
        """The account's feed, made (unbased, idle) when it has none."""
        found = self.feeds.get(account)
        if found is not None:
            return found
        self._generation += 1
        feed = self._make(account, f"{self.epoch}.{self._generation}")
        self.feeds[account] = feed
        self._idle(feed)
        return feed

    def subscribe(self, client: Client, feed: F, kind: str) -> AccountChannel:
        channel = feed.channels[kind]
        channel.subscribers[client] = None
        self.held.setdefault(client, set()).add(feed.account)
        self.idle.pop(feed.account, None)
        return channel

    def unsubscribe(self, client: Client, account: int, kind: str) -> None:
        feed = self.feeds.get(account)
        if feed is not None:
            feed.channels[kind].subscribers.pop(client, None)
            if not feed.subscribed:
                self._idle(feed)

    def detach(self, client: Client) -> None:
        """Forget a client in every feed it holds a channel of."""
        for account in self.held.pop(client, ()):
            feed = self.feeds.get(account)
            if feed is None:
                continue
            for channel in feed.channels.values():
                channel.subscribers.pop(client, None)
            if not feed.subscribed:
                self._idle(feed)

    def _idle(self, feed: F) -> None:
        self.idle[feed.account] = None
        self.idle.move_to_end(feed.account)
        while len(self.idle) > self.max_idle:
            account, _ = self.idle.popitem(last=False)
            self.feeds.pop(account, None)

    def _forget(self, feed: F) -> None:
        self.feeds.pop(feed.account, None)
        self.idle.pop(feed.account, None)


# -- the trading feed ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """Each channel's seq once the record of this stream ``version`` was applied."""

    version: int
    seqs: tuple[int, int, int]


class AccountFeed(PrivateFeed[AccountSnapshot]):
    """One account's trading channels (see the module's doc)."""

    def __init__(self, account: int, epoch: str, replay_buffer: int, framing: Framing) -> None:
        super().__init__(TRADING_KINDS, account, epoch, replay_buffer, framing)
        self.applied_id = 0
        """The notification id of the newest record applied (or of the base snapshot)."""
        self.applied_version = 0
        self.positions: dict[str, Position] = {}
        self.pending: list[TradingRecord] = []
        """Live records kept while unbased (cleared when full: the versions tell whether the
        snapshot still follows on from what is kept)."""
        self.marks: deque[Mark] = deque(maxlen=replay_buffer + 1)
        self.floor = 0
        """The newest version the bus carried before the feed was made (those records were
        not kept): a first snapshot below it is stale, whatever the kept records say."""

    def _seqs(self) -> tuple[int, int, int]:
        return tuple(self.channels[kind].seq for kind in TRADING_KINDS)  # type: ignore[return-value]

    # -- live records --------------------------------------------------------------------------

    def take(self, record: TradingRecord) -> list[Delivery] | None:
        """The deliveries of one live record ([] for a repeat, or while unbased); None when
        its version skips one: records were lost and the feed cannot go on."""
        if not self.based:
            if len(self.pending) >= PENDING_RECORDS:
                self.pending.clear()
            self.pending.append(record)
            return []
        if record.notification_id <= self.applied_id or record.version <= self.applied_version:
            self.repeats += 1
            return []
        if record.version != self.applied_version + 1:
            return None
        return self._apply(record)

    def _apply(self, record: TradingRecord) -> list[Delivery]:
        event = record.event
        out: list[Delivery] = []
        if isinstance(event, ORDER_EVENTS):
            out.append(self.channels[ORDERS].deliver(event_json(event)))
        if isinstance(event, OrderFilled):
            out.append(self.channels[FILLS].deliver(fill_json(event)))
            held = self.positions.get(event.instrument) or Position(instrument=event.instrument)
            position = held.traded(event.side, event.quantity, event.price)
            self.positions[event.instrument] = position
            out.append(self.channels[POSITIONS].deliver(position_json(position)))
        self.applied_id, self.applied_version = record.notification_id, record.version
        self.marks.append(Mark(record.version, self._seqs()))
        return out

    # -- snapshots -----------------------------------------------------------------------------

    def base(self, snapshot: AccountSnapshot) -> list[Delivery] | None:
        """Start the unbased feed from its first snapshot: the kept records after it are
        applied (their deliveries returned, numbered from 1); None when the kept records do
        not follow on from it (some were lost, or more came than were kept, or the snapshot is
        older than a record the bus carried before the feed was made: read again)."""
        assert not self.based
        if snapshot.version < self.floor:
            return None  # the read models have not reached what the bus already carried
        after = [r for r in self.pending if r.notification_id > snapshot.notification_id]
        expected = snapshot.version + 1
        for record in after:
            if record.version != expected:
                return None  # the kept records stay: a newer snapshot may follow on
            expected += 1
        self.pending = []
        self.based = True
        self.applied_id, self.applied_version = snapshot.notification_id, snapshot.version
        self.positions = {position.instrument: position for position in snapshot.positions}
        self.marks.append(Mark(snapshot.version, self._seqs()))
        out: list[Delivery] = []
        for record in after:
            out.extend(self._apply(record))
        return out

    def join_point(self, kind: str, snapshot: AccountSnapshot) -> int | Wait | None:
        """The seq of channel ``kind`` as of ``snapshot`` (based feeds only); :data:`WAIT`
        when the snapshot is newer than the feed; None when the feed no longer remembers
        that far back (read again)."""
        assert self.based
        if snapshot.version > self.applied_version:
            return WAIT
        index = TRADING_KINDS.index(kind)
        for mark in reversed(self.marks):
            if mark.version <= snapshot.version:
                return mark.seqs[index] if mark.version == snapshot.version else None
        return None

    def ready(self, snapshot: AccountSnapshot) -> bool:
        return self.applied_version >= snapshot.version

    def snapshot_message(
        self, kind: str, seq: int, reset: bool, snapshot: AccountSnapshot
    ) -> bytes:
        """The snapshot's items of channel ``kind``, as JSON, in its ``snapshot`` message."""
        if kind == ORDERS:
            items = list(snapshot.orders)
        elif kind == FILLS:
            items = [fill_json(fill) for fill in snapshot.fills]
        else:
            items = [position_json(position) for position in snapshot.positions]
        return self.channels[kind].frames.snapshot(seq, reset, items)


class TradingFeeds(AccountFeeds[AccountFeed]):
    """Every account's trading feed; and the newest version the bus carried of accounts
    without one (:attr:`seen`)."""

    def __init__(self, epoch: str, replay_buffer: int, max_idle: int, framing: Framing) -> None:
        super().__init__(epoch, replay_buffer, max_idle, framing)
        self.dropped = 0
        """Feeds dropped because a record's version skipped one."""
        self.seen: OrderedDict[int, int] = OrderedDict()
        """The newest version the bus carried of each account without a feed (at most
        :data:`SEEN_ACCOUNTS`, the least recently seen forgotten first): a feed made later
        starts with it as its floor."""

    def _make(self, account: int, epoch: str) -> AccountFeed:
        feed = AccountFeed(account, epoch, self.replay_buffer, self.framing)
        feed.floor = self.seen.pop(account, 0)
        return feed

    def take(self, record: TradingRecord) -> tuple[list[Delivery], AccountFeed | None]:
        """The deliveries of one live record; and the feed it broke, if any (its version
        skipped one: the feed is forgotten, its subscribers are to be told)."""
        account = record.event.account
        feed = self.feeds.get(account)
        if feed is None:
            self.seen[account] = max(record.version, self.seen.pop(account, 0))
            if len(self.seen) > SEEN_ACCOUNTS:
                self.seen.popitem(last=False)
            return [], None
        out = feed.take(record)
        if out is None:
            self._forget(feed)
            self.dropped += 1
            return [], feed
        return out, None
