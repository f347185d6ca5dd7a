"""The stream's rules without a socket: subscriptions, the last sequence number per channel,
what to send on a new connection, and which messages reach the bot (``docs/sdk.md``).

:class:`StreamCore` is fed the frames the gateway sends (:meth:`StreamCore.receive`) and told
when a connection opens and drops; it answers with :class:`Output`: frames to send, messages
for the bot, and the requests answered. Its guarantees, by the gateway's resume rules
(``docs/protocol.md``):

- on a new connection it sends ``auth`` first (when it has a token), then, once
  ``authenticated`` comes, a ``resume`` (the last ``seq`` and ``epoch``) for every channel
  that had a snapshot, and a ``subscribe`` for the others;
- an update whose ``seq`` is not above the last one is dropped (never delivered twice);
- a jump in ``seq`` is taken only where a ``conflated`` announced that many skipped numbers
  (a lagging connection, or an exact catch-up after a resume); any other jump is a gap: the
  core sends ``resume`` on the same connection and drops the channel's updates until the
  gateway answers, so the missed ones arrive in order;
- a feed-gap notice is delivered once per span (``instrument``, ``start``, ``end``,
  ``reason``), although a resume may repeat one.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from sdk.wire import (
    PRIVATE_CHANNELS,
    Authenticated,
    CandleUpdate,
    Channel,
    Conflated,
    Error,
    Gap,
    Incoming,
    Message,
    PrivateSnapshot,
    PrivateSubscribed,
    PrivateUpdate,
    Snapshot,
    Subscribed,
    TickUpdate,
    Unsubscribed,
    decode,
    request,
)

FEED_LOST: Final = "unavailable"
"""The gateway's code when it drops a private channel whose feed lost records: the stream
subscribes to it again at once (a fresh snapshot follows)."""

GAP_MEMORY: Final = 1024
"""How many feed-gap notices the core remembers to drop repeats (the gateway remembers 64
per instrument)."""


@dataclass(slots=True)
class _ChannelState:
    snapshot: int | None
    """How many items the subscription's snapshot asks for (None: the gateway's default)."""
    request_id: int | None
    """The bot's request not answered yet (a subscribe sent again after a reconnect keeps
    its id, so the bot's wait ends with the answer on the new connection)."""
    epoch: str | None = None
    seq: int | None = None
    """The last sequence number delivered (None before the first snapshot)."""
    allowance: int = 0
    """Sequence numbers a ``conflated`` announced as skipped, not yet seen skipped."""
    resyncing: bool = False
    """A ``resume`` was sent after a gap: updates wait for its answer."""


@dataclass(frozen=True, slots=True)
class Answered:
    """The request ``id`` was answered: ``error`` None when it succeeded."""

    id: int
    error: Error | None = None


@dataclass(slots=True)
class Output:
    send: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    answered: list[Answered] = field(default_factory=list)


class StreamCore:
    """One stream's subscriptions and sequence numbers, across any number of connections."""

    def __init__(self) -> None:
        self.channels: dict[Channel, _ChannelState] = {}
        self.ready = False
        """A connection is open and authenticated (or needs no token): requests go out."""
        self.expires: int | None = None
        """The connection's token expiry (UNIX seconds) as the gateway last said it."""
        self._next_id = 0
        self._auth_id: int | None = None
        self._gaps: OrderedDict[tuple[str, int, int, str], None] = OrderedDict()
        self.dropped_repeats = 0
        """Updates dropped because their ``seq`` had been delivered already."""
        self.resumes = 0
        """``resume`` requests sent (after reconnects and after gaps)."""

    # -- what the bot asks ------------------------------------------------------------------

    def subscribe(self, channel: Channel, snapshot: int | None = None) -> tuple[int, list[str]]:
        """Hold ``channel``: the request's id and the frames to send now (none while not
        ready: they go out on :meth:`connected`)."""
        rid = self._id()
        state = _ChannelState(snapshot, rid)
        self.channels[channel] = state
        return rid, [self._subscribe(channel, state, rid)] if self.ready else []

    def unsubscribe(self, channel: Channel) -> tuple[int, list[str]]:
        """Drop ``channel``: nothing of it is delivered after this call."""
        rid = self._id()
        held = self.channels.pop(channel, None)
        if held is None or not self.ready:
            return rid, []
        return rid, [request("unsubscribe", rid, **channel.fields())]

    def renew(self, token: str) -> str:
        """The ``auth`` frame that renews the connection's token."""
        return request("auth", self._id(), token=token)

    # -- the connection ---------------------------------------------------------------------

    def connected(self, token: str | None) -> list[str]:
        """A connection opened: ``auth`` first with a token, else every channel's request."""
        self._auth_id = None
        if token is not None:
            self._auth_id = self._id()
            return [request("auth", self._auth_id, token=token)]
        self.ready = True
        return self._requests()

    def disconnected(self) -> None:
        self.ready = False
        self._auth_id = None
        for state in self.channels.values():
            state.allowance = 0
            state.resyncing = False

    # -- what the gateway sends -------------------------------------------------------------

    def receive(self, frame: str | bytes) -> Output:
        """Take one frame; raises ``msgspec.DecodeError`` for one that is not the protocol's."""
        out = Output()
        message = decode(frame)
        if message is not None:
            self._take(message, out)
        return out

    def _take(self, message: Incoming, out: Output) -> None:
        if isinstance(message, CandleUpdate | TickUpdate | PrivateUpdate):
            self._update(message, out)
        elif isinstance(message, Snapshot | PrivateSnapshot):
            self._snapshot(message, out)
        elif isinstance(message, Conflated):
            state = self.channels.get(message.channel_key())
            if state is not None and not state.resyncing:
                state.allowance += message.dropped
                out.messages.append(message)
        elif isinstance(message, Gap):
            self._gap(message, out)
        elif isinstance(message, Subscribed | PrivateSubscribed):
            self._subscribed(message, out)
        elif isinstance(message, Authenticated):
            self._authenticated(message, out)
        elif isinstance(message, Unsubscribed):
            if isinstance(message.id, int):
                out.answered.append(Answered(message.id))
        else:
            self._error(message, out)

    def _update(self, message: CandleUpdate | TickUpdate | PrivateUpdate, out: Output) -> None:
        state = self.channels.get(message.channel_key())
        if state is None or state.seq is None or state.resyncing:
            return
        jump = message.seq - state.seq - 1
        if jump < 0:
            self.dropped_repeats += 1
            return
        if jump > state.allowance:  # numbers missed without a conflated: fetch them
            state.resyncing = True
            out.send.append(self._resume(message.channel_key(), state, self._id()))
            return
        state.allowance -= jump
        state.seq = message.seq
        out.messages.append(message)

    def _snapshot(self, message: Snapshot | PrivateSnapshot, out: Output) -> None:
        state = self.channels.get(message.channel_key())
        if state is None:
            return
        state.epoch, state.seq = message.epoch, message.seq
        state.allowance, state.resyncing = 0, False
        out.messages.append(message)

    def _subscribed(self, message: Subscribed | PrivateSubscribed, out: Output) -> None:
        state = self.channels.get(message.channel_key())
        if state is None:
            return
        state.epoch, state.resyncing = message.epoch, False
        if state.request_id is not None and state.request_id == message.id:
            out.answered.append(Answered(state.request_id))
            state.request_id = None

    def _authenticated(self, message: Authenticated, out: Output) -> None:
        self.expires = message.expires
        if self._auth_id is not None and message.id == self._auth_id:
            self._auth_id = None
            self.ready = True
            out.send.extend(self._requests())

    def _gap(self, message: Gap, out: Output) -> None:
        key = (message.instrument, message.start, message.end, message.reason)
        if key in self._gaps:
            self._gaps.move_to_end(key)
            return
        self._gaps[key] = None
        if len(self._gaps) > GAP_MEMORY:
            self._gaps.popitem(last=False)
        out.messages.append(message)

    def _error(self, message: Error, out: Output) -> None:
        if message.id is None:  # the gateway's own doing: a channel dropped
            private = PRIVATE_CHANNELS.get(message.channel or "")
            if private is not None and message.code == FEED_LOST:
                self._subscribe_again(private, out)  # its feed lost records: a fresh snapshot
            elif private is not None:
                self.channels.pop(private, None)
            elif message.channel is not None and message.instrument is not None:
                kind: Literal["candles", "ticks"] = "ticks"
                if message.channel == "candles":
                    kind = "candles"
                self.channels.pop(Channel(kind, message.instrument, message.interval), None)
            out.messages.append(message)
            return
        for channel, state in list(self.channels.items()):
            if state.request_id == message.id:  # a subscription refused: not held
                del self.channels[channel]
        if isinstance(message.id, int):
            out.answered.append(Answered(message.id, message))

    def _subscribe_again(self, channel: Channel, out: Output) -> None:
        held = self.channels.get(channel)
        if held is None:
            return
        state = _ChannelState(held.snapshot, self._id())
        self.channels[channel] = state
        if self.ready:
            out.send.append(self._subscribe(channel, state, state.request_id or 0))

    # -- frames -----------------------------------------------------------------------------

    def _requests(self) -> list[str]:
        frames = []
        for channel, state in self.channels.items():
            rid = state.request_id if state.request_id is not None else self._id()
            if state.seq is None:
                frames.append(self._subscribe(channel, state, rid))
            else:
                frames.append(self._resume(channel, state, rid))
        return frames

    def _subscribe(self, channel: Channel, state: _ChannelState, rid: int) -> str:
        extra = {} if state.snapshot is None else {"snapshot": state.snapshot}
        return request("subscribe", rid, **channel.fields(), **extra)

    def _resume(self, channel: Channel, state: _ChannelState, rid: int) -> str:
        self.resumes += 1
        return request("resume", rid, **channel.fields(), seq=state.seq, epoch=state.epoch)

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter: the wait before reconnect ``attempt``
    (0 for the first) is uniform in ``[0, min(cap, base * 2**attempt)]``, so that clients
    dropped together by one gateway do not all come back at the same instant."""

    base: float = 0.25
    cap: float = 30.0
    uniform: Callable[[float, float], float] = random.uniform

    def delay(self, attempt: int) -> float:
        return self.uniform(0.0, min(self.cap, self.base * 2 ** min(attempt, 32)))
