"""One connection's session, sans I/O: subscribe, snapshot, resume, catch-up and reset.

:class:`SessionCore` holds the rules of ``docs/protocol.md`` that need the gateway's state:
which instrument exists, what a snapshot holds, and how a ``resume`` is answered (the missed
messages, an exact catch-up, or a reset snapshot). It knows nothing of sockets, storage or the
event loop. It is fed the frames the client sent (:meth:`SessionCore.receive`) and the answers
to the storage reads it asked for (:meth:`SessionCore.answer`, :meth:`SessionCore.failed`), and
hands back *actions*, in order, for its shell (:class:`~ws_gateway.session.Session`) to carry
out:

- :class:`Send`: write these frames and channel deliveries to the client;
- :class:`Close`: close the connection with this code;
- a read of storage (:class:`ReadInstruments`, :class:`ReadLastCandles`, :class:`ReadCandles`),
  or the check of a token sent in an ``auth`` frame (:class:`Authenticate`), always the last
  action of a list. The shell performs it and hands the core the result; until then the core
  takes no other frame (the shell answers one request at a time).

It also holds the connection's entitlements (``docs/protocol.md``, "Tokens and plans"): the
principal it serves (from the handshake's token, or an ``auth`` first frame), whose
connections it counts against the plan (:class:`~ws_gateway.admission.PrincipalSlots`); a
delayed plan's channels are the hub's shared delayed views (:mod:`ws_gateway.delay`);
:meth:`SessionCore.regrant` applies new entitlements and drops the channels they no longer
allow.

Joining a channel is done here, on the hub (plain state, no I/O): the :class:`Send` handed back
with a join must be written before the shell waits for anything, so that the reply and the
snapshot or catch-up reach the client ahead of the channel's next update. Storage lags the bus
and the hub moves on while a read is under way: when the memory a read was planned against
changed meanwhile, the core asks again (at most :data:`STORE_RETRIES` reads per decision).

Each multi-step request is written as a generator that yields the reads it needs and is resumed
with their results; the generator is the request's state while a read is outstanding.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from core.alert_reads import AlertsSnapshot
from core.candles import Candle
from core.intervals import Interval
from core.trading_reads import AccountSnapshot
from streams.outage import OutageLog
from ws_gateway.admission import PrincipalSlots
from ws_gateway.auth import AuthenticationError, Principal
from ws_gateway.channels import CandleChannel, Channel, Client, Delivery, TickChannel
from ws_gateway.delay import DelayedCandles
from ws_gateway.gaps import Told
from ws_gateway.hub import Hub
from ws_gateway.outbox import Item
from ws_gateway.private import WAIT, PrivateFeed
from ws_gateway.protocol import ConnectionProtocol, account_of, entitlement
from ws_gateway.wire import (
    ALERTS,
    TICKS,
    Auth,
    ChannelKey,
    CloseCode,
    ErrorCode,
    Ping,
    RequestError,
    RequestId,
    Resume,
    Subscribe,
    Unsubscribe,
    authenticated,
    conflated,
    error,
    pong,
    private_subscribed,
    subscribed,
    unsubscribed,
)

log = logging.getLogger(__name__)

STORE_RETRIES: Final = 3
"""Reads of storage for one decision, when the cache moved under the previous ones."""
RETRY_PAUSE: Final = 0.1

PRIVATE_PAUSE: Final = 0.25
"""The pause before a private channel's snapshot is read again (the read models behind the
bus catch up meanwhile)."""


def private_reads(wait: float) -> int:
    """How many snapshot reads a private subscription takes before it gives up
    (``unavailable``): about ``wait`` seconds of them, at least :data:`STORE_RETRIES`."""
    return max(STORE_RETRIES, 1 + math.ceil(wait / PRIVATE_PAUSE))


"""Seconds before an account's snapshot is read again (the read models move on meanwhile)."""


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``items`` to the client, in order: frames of the connection's own (replies,
    snapshots, catch-up updates, gap notices) and channel deliveries (a replay).

    ``active``: it tells the client of a feed gap, so the next heartbeat may skip the client.
    """

    items: list[Item]
    active: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with ``code`` and ``reason``."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReadInstruments:
    """Read every instrument storage knows (answer: ``list[str]``)."""


@dataclass(frozen=True, slots=True)
class ReadLastCandles:
    """Read the newest ``count`` candles of ``instrument`` opening before ``before``, however
    old (``store.last_candles``; answer: ``list[Candle]``)."""

    instrument: str
    interval: Interval
    before: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadCandles:
    """Read the candles of ``instrument`` opening in ``[start, end)`` (``store.candles``;
    answer: ``list[Candle]``)."""

    instrument: str
    interval: Interval
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check the token of an ``auth`` frame (answer: the :class:`Principal`, or the
    :class:`AuthenticationError` through :meth:`SessionCore.refused`)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReadAccount:
    """Read ``account``'s snapshot of the trading read models, with ``limit`` recent orders
    and fills, after a pause of ``pause`` seconds (a retry); answer: an
    :class:`~core.trading_reads.AccountSnapshot`."""

    account: int
    limit: int
    pause: float = 0.0


@dataclass(frozen=True, slots=True)
class ReadAlerts:
    """Read ``account``'s snapshot of its fired alerts, with its ``limit`` newest firings,
    after a pause of ``pause`` seconds (a retry); answer: an
    :class:`~core.alert_reads.AlertsSnapshot`."""

    account: int
    limit: int
    pause: float = 0.0


PrivateSnapshot = AccountSnapshot | AlertsSnapshot


@dataclass(frozen=True, slots=True)
class AwaitFeed:
    """Wait at most ``timeout`` seconds until the account's feed of private channel ``kind``
    (of epoch ``epoch``) has applied every live record ``snapshot`` holds
    (:meth:`~ws_gateway.private.PrivateFeed.ready`); answer: ``True`` when it has."""

    kind: str
    account: int
    epoch: str
    snapshot: PrivateSnapshot
    timeout: float


Read = ReadInstruments | ReadLastCandles | ReadCandles
ReadPrivate = ReadAccount | ReadAlerts
Wait = Read | Authenticate | ReadPrivate | AwaitFeed
"""What the core waits for: a storage read, a token check, an account's snapshot or its feed."""
Action = Send | Close | Wait
Answer = list[Candle] | list[str] | Principal | PrivateSnapshot | bool


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


_Step = Generator[Wait, Answer | _Failed, None]


# -- the instruments that exist -------------------------------------------------------------------


class Directory:
    """Which instruments exist: seen on the bus or configured (the hub's set), else in storage.

    Shared by the gateway's sessions: storage is asked at most once per ``refresh`` seconds,
    and ``outage`` tells the operator of a storage outage once for all of them (then at most
    every 30 s, and once when it ends), not once per read of every session.
    """

    def __init__(self, hub: Hub, storage: bool, refresh: float = 5.0, pause: float = 5.0) -> None:
        self.hub = hub
        self.storage = storage
        self.refresh = refresh
        self.outage = OutageLog(what="storage", then="snapshots and resumes from memory only")
        self.trading_outage = OutageLog(
            what="the trading database", then="the trading channels answer unavailable"
        )
        self.alerts_outage = OutageLog(
            what="the main API's database", then="the alerts channel answers unavailable"
        )
        self.pause = pause
        self._down_until = -float("inf")
        self._asked = -float("inf")

    def usable(self, now: float) -> bool:
        """Whether to read storage now (``now``: wall seconds): not for ``pause`` seconds after
        a read failed, so that a subscribe during an outage is answered from memory at once
        rather than after a wait for a connection that is not coming."""
        return self.storage and now >= self._down_until

    def storage_failed(self, now: float, error: str) -> str | None:
        """A read failed: pause reads; the line to log, if any (see :class:`OutageLog`)."""
        self._down_until = now + self.pause
        return self.outage.failed(now, error)

    def storage_answered(self, now: float) -> str | None:
        """A read succeeded: the line that ends an outage, if there was one."""
        self._down_until = -float("inf")
        return self.outage.recovered(now)

    def lookup(self, instrument: str, now: float) -> bool | None:
        """True when ``instrument`` is known, False when not; None when storage is to be asked
        (:meth:`listed` takes its answer). ``now`` is a monotonic time in seconds."""
        if instrument in self.hub.instruments:
            return True
        if not self.storage or now - self._asked < self.refresh:
            return False
        self._asked = now
        return None

    def listed(self, instrument: str, instruments: Iterable[str]) -> bool:
        """Take storage's list of instruments; whether ``instrument`` is known now."""
        self.hub.instruments.update(instruments)
        return instrument in self.hub.instruments


# -- the session --------------------------------------------------------------------------------


class SessionCore:
    """The rules of one connection (see the module's doc).

    ``client`` is what the hub delivers the connection's channels to (the shell); ``storage``
    says whether the shell can read storage (without it, snapshots and catch-ups come from
    memory only); ``clock`` gives wall time in nanoseconds (the current candle interval, the
    delay). ``token_sent``: the handshake carried a token (``protocol.principal`` is its
    principal); otherwise the first frame may be ``auth``, and must be when ``anonymous`` is
    false (``protocol.principal`` is then no one's until it comes). ``slots`` counts the
    connections of each principal across the gateway. ``private``: the shell can read
    accounts' snapshots of the trading read models (else the trading channels are
    ``unavailable``); ``alerts``: the shell can read accounts' fired alerts (else the
    ``alerts`` channel is ``unavailable``).
    """

    def __init__(
        self,
        hub: Hub,
        client: Client,
        protocol: ConnectionProtocol,
        directory: Directory,
        *,
        storage: bool,
        clock: Callable[[], int] = time.time_ns,
        token_sent: bool = True,
        anonymous: bool = True,
        slots: PrincipalSlots | None = None,
        private: bool = False,
        alerts: bool = False,
    ) -> None:
        self.hub = hub
        self.private = private
        """Whether the shell can read accounts' snapshots (the trading channels are served)."""
        self.alerts = alerts
        """Whether the shell can read accounts' fired alerts (``alerts`` is served)."""
        self.client = client
        self.protocol = protocol
        self.directory = directory
        self.storage = storage
        self.clock = clock
        self.told = Told(hub.gaps)
        """The feed-gap notices this connection was sent (each is sent once)."""
        self.slots = slots or PrincipalSlots()
        self.may_auth = not token_sent
        """The next frame may be ``auth`` (only the first frame of a connection without a token)."""
        self.must_auth = not token_sent and not anonymous
        """No principal yet: every frame but ``auth`` closes the connection (4401)."""
        self._counted: str | None = None
        self._step: _Step | None = None
        self._pending: Wait | None = None
        self._out: list[Item] = []
        self._active = False

    @property
    def pending(self) -> Wait | None:
        """The storage read or token check the core waits for (None: it takes the next frame)."""
        return self._pending

    @property
    def principal(self) -> Principal:
        return self.protocol.principal

    # -- who the client is ---------------------------------------------------------------------

    def start(self) -> list[Action]:
        """The connection opened with the handshake's principal: count it (a principal past
        its plan's connections is refused and closed)."""
        return [] if self.must_auth else self._admit()

    def finish(self) -> None:
        """The connection ended: its principal's slot is free again."""
        if self._counted is not None:
            self.slots.give_back(self._counted)
            self._counted = None

    def auth_timed_out(self, waited: float) -> list[Action]:
        """No ``auth`` frame came within ``waited`` seconds of a connection that needs one."""
        if not self.must_auth:
            return []
        return self._unauthorized(None, f"no token within {waited:g} s: send auth first")

    def refused(self, exc: AuthenticationError) -> list[Action]:
        """The token of the ``auth`` frame (:attr:`pending`) was refused."""
        return self._answer(_Failed(exc))

    def regrant(self, principal: Principal) -> list[Action]:
        """Take new entitlements of the connection's principal (``entitlements-changed``):
        every channel held that they no longer allow is dropped with a ``forbidden`` error
        naming it, and so is every channel held when the delay changed (the client subscribes
        again, to the data its plan now sees)."""
        self._regrant(principal)
        return self._flush(None)

    def _regrant(self, principal: Principal) -> None:
        old = self.protocol.principal
        held = sorted(self.protocol.subscriptions)
        dropped = dict(self.protocol.regrant(principal))
        if old.delay_s != principal.delay_s:
            for key in held:
                dropped.setdefault(
                    key,
                    f"plan {principal.plan} now sees data {principal.delay_s} s late:"
                    " subscribe again",
                )
        for key in held:
            why = dropped.get(key)
            if why is None:
                continue
            if key.private:
                self._leave_private(old, key)
                self._reply(error(None, ErrorCode.FORBIDDEN, why, "channel", key))
                continue
            channel = self.hub.held(key, old.delay_s)
            if channel is not None:
                self.hub.unsubscribe(self.client, channel)
            self.protocol.removed(key)
            self._forget_gaps(key.instrument)
            self._reply(error(None, ErrorCode.FORBIDDEN, why, "channel", key))

    def _admit(self) -> list[Action]:
        """Count the principal's connection; refuse it beyond its plan's limit."""
        principal = self.protocol.principal
        subject = principal.counted
        if subject is not None and principal.grant is not None:
            limit = principal.grant.ws_connections
            if not self.slots.take(subject, limit):
                self._reply(
                    error(
                        None,
                        ErrorCode.TOO_MANY_CONNECTIONS,
                        f"at most {limit} connections at once on plan {principal.plan}",
                    )
                )
                actions = self._flush(None)
                actions.append(Close(CloseCode.RATE_LIMITED, "too many connections"))
                return actions
            self._counted = subject
        return []

    def _unauthorized(self, rid: RequestId, message: str) -> list[Action]:
        self._reply(error(rid, ErrorCode.UNAUTHORIZED, message, "token"))
        actions = self._flush(None)
        actions.append(Close(CloseCode.UNAUTHORIZED, "unauthorized"))
        return actions

    def _auth(self, request: Auth) -> _Step:
        result = yield from self._authenticate(request)
        self.protocol.principal = result
        self.must_auth = False
        admitted = self._admit()
        if admitted:
            raise _EndedError(admitted)
        self._authenticated(request, result)

    def _renew(self, request: Auth) -> _Step:
        """A new token of the connection's own principal: its expiry (and plan) replace the
        old ones, so a connection outlives its first token."""
        subject = self.protocol.principal.counted
        result = yield from self._authenticate(request)
        if result.counted != subject:
            raise RequestError(
                ErrorCode.FORBIDDEN,
                f"a renewal must carry a token of {subject}",
                "token",
                request.id,
            )
        self._regrant(result)
        self._authenticated(request, result)

    def _authenticate(self, request: Auth) -> Generator[Wait, Answer | _Failed, Principal]:
        result = yield Authenticate(request.token)
        if isinstance(result, _Failed):
            raise _TokenRefusedError(request.id, str(result.error))
        assert isinstance(result, Principal)
        return result

    def _authenticated(self, request: Auth, principal: Principal) -> None:
        grant = principal.grant
        expires = None if grant is None else grant.expires_at
        self._reply(authenticated(request.id, principal.plan, principal.delay_s, expires))

    # -- inputs --------------------------------------------------------------------------------

    def receive(self, frame: str | bytes, now: float) -> list[Action]:
        """Take one frame from the client (``now``: monotonic seconds, for the rate limit and
        the directory); what to do about it. Bad requests are answered, nothing raises."""
        if self._step is not None:
            raise RuntimeError("a storage read is outstanding: answer it first")
        may_auth, self.may_auth = self.may_auth, False
        try:
            request = self.protocol.receive(frame, now)
        except RequestError as exc:
            if self.must_auth:
                return self._unauthorized(exc.id, f"{exc.message}; send auth first")
            return self._refused(exc)
        if isinstance(request, Auth):
            if may_auth:
                return self._advance(self._auth(request), None)
            if self.protocol.principal.counted is not None:
                return self._advance(self._renew(request), None)
            return self._refused(
                RequestError(
                    ErrorCode.BAD_REQUEST,
                    "auth is taken as the first frame of a connection opened without a token,"
                    " or to renew the token of a connection that has one",
                    "op",
                    request.id,
                )
            )
        if self.must_auth:
            return self._unauthorized(request.id, "a token is required: send auth first")
        if isinstance(request, Ping):
            self._reply(pong(request.id))
        elif isinstance(request, Unsubscribe):
            self._unsubscribe(request)
        elif request.channel.private:
            return self._advance(self._private(request), None)
        elif isinstance(request, Subscribe):
            return self._advance(self._subscribe(request, now), None)
        else:
            return self._advance(self._resume(request, now), None)
        return self._flush(None)

    def answer(self, result: Answer) -> list[Action]:
        """Take the result of :attr:`pending` (as the store or the authenticator returned it)."""
        if isinstance(self._pending, ReadPrivate):
            told = self._outage(self._pending).recovered(self.clock() / 1e9)
            if told is not None:
                log.warning(told)
        elif isinstance(self._pending, Read):
            told = self.directory.storage_answered(self.clock() / 1e9)
            if told is not None:
                log.warning(told)
        return self._answer(result)

    def failed(self, error: Exception) -> list[Action]:
        """Take the failure of :attr:`pending` (the request goes on without it)."""
        if isinstance(self._pending, ReadPrivate):
            told = self._outage(self._pending).failed(
                self.clock() / 1e9, str(error) or type(error).__name__
            )
            if told is not None:
                log.warning(told)
            return self._answer(_Failed(error))
        told = self.directory.storage_failed(self.clock() / 1e9, str(error) or type(error).__name__)
        if told is not None:
            log.warning(told)
        return self._answer(_Failed(error))

    def _outage(self, read: ReadPrivate) -> OutageLog:
        directory = self.directory
        return directory.alerts_outage if isinstance(read, ReadAlerts) else directory.trading_outage

    def _answer(self, result: Answer | _Failed) -> list[Action]:
        step = self._step
        if step is None:
            raise RuntimeError("no storage read is outstanding")
        return self._advance(step, result)

    def _advance(self, step: _Step, result: Answer | _Failed | None) -> list[Action]:
        self._step = self._pending = None
        try:
            read = step.send(result) if result is not None else next(step)
        except StopIteration:
            return self._flush(None)
        except RequestError as exc:
            return self._refused(exc)
        except _TokenRefusedError as refused:
            return self._unauthorized(refused.rid, refused.message)
        except _EndedError as closed:
            return closed.actions
        self._step, self._pending = step, read
        return self._flush(read)

    # -- outputs -------------------------------------------------------------------------------

    def _reply(self, payload: bytes) -> None:
        self._out.append(self.hub.framing(payload))

    def _flush(self, read: Wait | None) -> list[Action]:
        actions: list[Action] = []
        if self._out:
            actions.append(Send(self._out, self._active))
            self._out, self._active = [], False
        if read is not None:
            actions.append(read)
        return actions

    def _refused(self, exc: RequestError) -> list[Action]:
        self._reply(exc.payload())
        actions = self._flush(None)
        if self.protocol.abusive:
            actions.append(Close(CloseCode.RATE_LIMITED, "too many requests"))
        return actions

    # -- requests ------------------------------------------------------------------------------

    def _channel(
        self, request: Subscribe | Resume, now: float
    ) -> Generator[Wait, Answer | _Failed, CandleChannel | TickChannel]:
        key = request.channel
        known = self.directory.lookup(key.instrument, now)
        if known is None:
            result = yield ReadInstruments()
            if isinstance(result, _Failed):
                result = []  # told by the outage log
            known = self.directory.listed(key.instrument, cast("list[str]", result))
        if not known:
            raise RequestError(
                ErrorCode.UNKNOWN_INSTRUMENT,
                f"no instrument {key.instrument} here",
                "instrument",
                request.id,
            )
        delay = self.protocol.principal.delay_s
        channel: CandleChannel | TickChannel | None
        if delay and key.kind != TICKS:
            channel = self.hub.view(key, delay, self.clock())
        else:
            channel = self.hub.channel(key)
        assert channel is not None  # the protocol checked the interval
        return channel

    def _unsubscribe(self, request: Unsubscribe) -> None:
        if request.channel.private:
            self._leave_private(self.protocol.principal, request.channel)
            self._reply(unsubscribed(request.id, request.channel))
            return
        channel = self.hub.held(request.channel, self.protocol.principal.delay_s)
        if channel is not None:
            self.hub.unsubscribe(self.client, channel)
        self.protocol.removed(request.channel)
        self._forget_gaps(request.channel.instrument)
        self._reply(unsubscribed(request.id, request.channel))

    def _forget_gaps(self, instrument: str) -> None:
        if all(key.instrument != instrument for key in self.protocol.subscriptions):
            self.told.forget(instrument)

    def _join(self, request: Subscribe | Resume, channel: CandleChannel | TickChannel) -> None:
        """Subscribe and say so; whatever is sent with it reaches the client before updates.

        The entitlements are checked again: they may have changed while storage was read."""
        principal = self.protocol.principal
        refusal = entitlement(principal, channel.key)
        if refusal is None and _delay_of(channel) != principal.delay_s:
            refusal = "channel", f"plan {principal.plan} now sees data {principal.delay_s} s late"
        if refusal is not None:
            raise RequestError(ErrorCode.FORBIDDEN, refusal[1], refusal[0], request.id)
        self.hub.subscribe(self.client, channel)
        self.protocol.added(channel.key)
        self._reply(subscribed(request.id, channel.key, channel.epoch))

    def _subscribe(self, request: Subscribe, now: float) -> _Step:
        channel = yield from self._channel(request, now)
        yield from self._snapshot(request, channel, reset=False)

    def _snapshot(
        self,
        request: Subscribe | Resume,
        channel: CandleChannel | TickChannel,
        reset: bool,
        seen: int | None = None,
    ) -> _Step:
        """Join the channel with a snapshot, then the gap notices that concern it: those that
        came after its seq (or after ``seen``, the seq a resuming client last saw) or reach
        into its items."""
        count = self.protocol.snapshot_size(request)
        if isinstance(channel, TickChannel):
            if request.snapshot is None:
                count = 0  # ticks: only the current seq unless the client asks for more
            snapshot = channel.snapshot(count, reset)
        else:
            older = yield from self._older(channel, count)
            # From here to the end nothing is read: the snapshot is current to channel.seq
            # and the updates after it are sent behind it.
            snapshot = channel.snapshot(count, reset, older)
        self._join(request, channel)
        self._reply(snapshot.payload)
        after = snapshot.seq if seen is None else min(seen, snapshot.seq)
        self._tell_gaps(channel, after, snapshot.start_ns)

    def _tell_gaps(self, channel: Channel, after: int, since_ns: int | None = None) -> None:
        if isinstance(channel, DelayedCandles):
            return  # a notice is news of now: delayed plans have the candles' gap flags
        key = channel.key
        for notice in self.hub.gaps.of(key.instrument):
            if notice.concerns(key, after, since_ns) and self.told.first_time(notice):
                self._out.append(notice.frame)
                self._active = True

    def _replay(self, channel: Channel, seq: int, missed: list[Delivery]) -> None:
        """Send the deliveries after ``seq`` with the gap notices in their places (a notice
        at position p follows message p), as a client that never left had them."""
        out = self._out
        k = 0
        key = channel.key
        notices = [] if isinstance(channel, DelayedCandles) else self.hub.gaps.of(key.instrument)
        for notice in notices:  # positions rise with arrival
            position = notice.position(key)
            if position < seq:
                continue
            while k < len(missed) and missed[k].seq <= position:
                out.append(missed[k])
                k += 1
            if self.told.first_time(notice):
                out.append(notice.frame)
        out.extend(missed[k:])

    def _older(
        self, channel: CandleChannel, count: int
    ) -> Generator[Wait, Answer | _Failed, list[Candle]]:
        """Candles from storage for the part of the newest ``count`` the cache may not hold.

        The cache is complete from :attr:`CandleChannel.complete_from` on (when it has seen
        nothing, from the current interval on); storage gives the newest candles before that,
        however old (a gateway started on a database that holds history, an instrument
        without a tick since). If the cache moved past the range while storage answered (it
        evicted candles meanwhile), ask again.
        """
        if not self.storage or count == 0 or not self.directory.usable(self.clock() / 1e9):
            return []
        interval = channel.interval
        older: list[Candle] = []
        for _ in range(STORE_RETRIES):
            end = channel.complete_from
            if end is None:
                now = self.clock()
                if isinstance(channel, DelayedCandles):
                    end = channel.due_before(now)  # nothing younger than the delay
                else:
                    end = interval.bucket_start(now) + interval.ns
            need = count - channel.cached_since(end)
            if need <= 0:
                return []
            result = yield ReadLastCandles(channel.key.instrument, interval, end, need)
            if isinstance(result, _Failed):  # told by the outage log
                return []
            older = cast("list[Candle]", result)
            moved = channel.complete_from
            if moved is None or moved <= end:
                break
        return older

    def _resume(self, request: Resume, now: float) -> _Step:
        channel = yield from self._channel(request, now)
        seq = request.seq
        foreign = request.epoch is not None and request.epoch != channel.epoch
        if foreign or seq > channel.seq:
            yield from self._snapshot(request, channel, reset=True)
            return
        missed = channel.missed(seq)
        if missed is not None:
            self._join(request, channel)
            self._replay(channel, seq, missed)
            return
        if request.channel.kind == TICKS or not isinstance(channel, CandleChannel):
            yield from self._snapshot(request, channel, reset=True, seen=seq)
            return
        caught_up = yield from self._catch_up(request, channel)
        if not caught_up:
            yield from self._snapshot(request, channel, reset=True, seen=seq)

    def _catch_up(
        self, request: Resume, channel: CandleChannel
    ) -> Generator[Wait, Answer | _Failed, bool]:
        """Bring the client to the present with the latest version of every candle changed
        since its seq (exact, without a reset); False when that is not possible."""
        seq = request.seq
        for _ in range(STORE_RETRIES):
            evicted = channel.evicted_since(seq)
            if evicted is None:
                return False
            stored: list[Candle] = []
            if evicted:
                if not self.storage or not self.directory.usable(self.clock() / 1e9):
                    return False
                first = min(entry.open_time for entry in evicted)
                last = max(entry.open_time for entry in evicted)
                result = yield ReadCandles(
                    channel.key.instrument, channel.interval, first, last + 1
                )
                if isinstance(result, _Failed):  # told by the outage log; a reset follows
                    return False
                stored = cast("list[Candle]", result)
            if channel.evicted_since(seq) == evicted:
                break
        else:
            return False
        try:
            catch_up = channel.catch_up(seq, evicted, stored)
        except LookupError:
            return False
        if len(catch_up.updates) > self.hub.settings.max_catch_up:
            return False
        self._join(request, channel)
        if catch_up.dropped:
            self._reply(conflated(channel.key, catch_up.dropped))
        frames, framing = channel.frames, self.hub.framing
        self._out.extend([framing(frames.update(seq, body)) for seq, body in catch_up.updates])
        self._tell_gaps(channel, request.seq)
        return True

    # -- private channels ------------------------------------------------------------------------

    def _leave_private(self, principal: Principal, key: ChannelKey) -> None:
        grant = principal.grant
        if grant is not None and grant.account_id is not None:
            self.hub.feeds(key.kind).unsubscribe(self.client, grant.account_id, key.kind)
        self.protocol.removed(key)

    def _private(self, request: Subscribe | Resume) -> _Step:
        """Subscribe to (or resume) one of the account's private channels: a resume within
        the feed's replay buffer and epoch gets the missed messages; otherwise a snapshot is
        read and joined to the live records (:mod:`ws_gateway.private`), ``reset`` for a
        resume."""
        key, rid = request.channel, request.id
        account = account_of(self.protocol.principal, key.kind)
        assert account is not None  # the protocol checked it
        alerts = key.kind == ALERTS
        source = "the main API's database" if alerts else "the trading database"
        if not (self.alerts if alerts else self.private):
            raise RequestError(
                ErrorCode.UNAVAILABLE,
                f"this gateway does not serve the {key.kind} channel: it does not read {source}",
                "channel",
                rid,
            )
        registry = self.hub.feeds(key.kind)
        if isinstance(request, Resume):
            feed = registry.get(account)
            if feed is not None and feed.based and request.epoch == feed.epoch:
                channel = feed.channels[key.kind]
                missed = channel.missed(request.seq) if request.seq <= channel.seq else None
                if missed is not None:
                    self._join_private(request, feed, account)
                    self._out.extend(missed)
                    return
        reset = isinstance(request, Resume)
        settings = self.hub.settings
        default = min(settings.private_snapshot, settings.max_snapshot)
        limit = default if request.snapshot is None else request.snapshot
        wait = settings.private_wait
        read = ReadAlerts if alerts else ReadAccount
        for attempt in range(private_reads(wait)):
            feed = registry.feed(account)  # made now: it keeps the records during the read
            result = yield read(account, limit, PRIVATE_PAUSE if attempt else 0.0)
            if isinstance(result, _Failed):  # why is the operator's (the outage log's)
                raise RequestError(
                    ErrorCode.UNAVAILABLE, f"{source} did not answer: retry later", "channel", rid
                )
            snapshot = cast("PrivateSnapshot", result)
            if registry.get(account) is not feed:
                continue  # dropped meanwhile (idle too long, or it lost records)
            if not feed.based:
                deliveries = feed.base(snapshot)
                if deliveries is None:
                    continue  # records were lost in between: a newer snapshot may follow on
            point = feed.join_point(key.kind, snapshot)
            if point is WAIT:
                came = yield AwaitFeed(key.kind, account, feed.epoch, snapshot, wait)
                if registry.get(account) is not feed:
                    continue
                if came is False:
                    self.hub.deliver(feed.settle(snapshot))
                point = feed.join_point(key.kind, snapshot)
            if not isinstance(point, int):
                continue
            channel = feed.channels[key.kind]
            missed = channel.missed(point)
            if missed is None:
                continue
            self._join_private(request, feed, account)
            self._reply(feed.snapshot_message(key.kind, point, reset, snapshot))
            self._out.extend(missed)
            return
        raise RequestError(
            ErrorCode.UNAVAILABLE,
            f"could not join a snapshot of the {key.kind} channel to its live records: retry later",
            "channel",
            rid,
        )

    def _join_private(
        self, request: Subscribe | Resume, feed: PrivateFeed[Any], account: int
    ) -> None:
        """Subscribe to the feed's channel and say so (the entitlement checked again: it may
        have changed during the read)."""
        key = request.channel
        refusal = entitlement(self.protocol.principal, key)
        if refusal is not None or account_of(self.protocol.principal, key.kind) != account:
            message = f"{key.kind} is no longer allowed" if refusal is None else refusal[1]
            raise RequestError(ErrorCode.NOT_ENTITLED, message, "channel", request.id)
        channel = self.hub.feeds(key.kind).subscribe(self.client, feed, key.kind)
        self.protocol.added(key)
        self._reply(private_subscribed(request.id, key.kind, account, channel.epoch))


def _delay_of(channel: Channel) -> int:
    return channel.delay_s if isinstance(channel, DelayedCandles) else 0


class _TokenRefusedError(Exception):
    """A token of an ``auth`` frame was refused: answer ``unauthorized`` and close (4401)."""

    def __init__(self, rid: RequestId, message: str) -> None:
        super().__init__(message)
        self.rid = rid
        self.message = message


class _EndedError(Exception):
    """The request ends the connection with these actions."""

    def __init__(self, actions: list[Action]) -> None:
        super().__init__("closed")
        self.actions = actions
