"""The alert evaluator: many alerts per instrument, each price checks only the alerts it
can change.

**Index.** Alerts live in streams (instrument, source, interval). A stream keeps the price
alerts (``above`` ... ``cross-down``) in one sorted map, threshold → alert ids, and per move
window a sorted map of percentages for ``move-up`` and one for ``move-down``. After each price
it notes the *band* around the price that holds no threshold: a price inside it changes no
alert (no condition turns true or false), so the common tick costs two comparisons. A price
outside it takes the alerts whose thresholds lie between the previous price and this one
(for a move, between the previous rise/fall and this one), not all of them. The few alerts a
price can change without crossing anything are kept aside: new alerts (their first price),
alerts whose cool-down ends (a heap by time) and alerts that expire (a heap by time).

**Order.** Within one price, firings come by alert id; prices come in input order, so the
same inputs give the same firings in the same order.

**Durability.** The state is a set of *rows*: one per alert (its spec and its arming state:
:class:`AlertRow`) and one per stream (the last price, the candle position, the gaps, the move
windows and the alerts waiting for their first price: :class:`StreamRow`). The timers
(cool-downs ending, expiries) are not stored: they follow from the alerts' rows.
:meth:`AlertEvaluator.delta` hands back the rows changed since the last call (an alert whose
arming state a price changed, an alert set, changed or deleted, a stream that took a price or
whose alerts changed), so that a processor stores per round what the round changed, not every
alert; :meth:`AlertEvaluator.from_rows` takes the stored rows back.
:meth:`AlertEvaluator.snapshot` gives every row at once as bytes and
:meth:`AlertEvaluator.restore` (or :meth:`~AlertEvaluator.from_snapshot`) takes it back
exactly. Either is stored with the input offsets it covers, so a restart replays from there
without a repeat or a loss.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import msgspec
from sortedcontainers import SortedDict

from core.alerts import AlertFired, AlertSpec, Condition, Source
from core.alerts import fired as firing
from core.candles import Candle, CandleStatus
from core.gaps import FeedGap
from core.numbers import to_decimal
from core.ticks import TickBatch
from main_api.alerts.rules import (
    MOVES,
    SCALE,
    AlertState,
    Phase,
    Rule,
    StreamKey,
    advance,
    compile_rule,
)
from main_api.alerts.window import ListWindow, MonotonicWindow, Window

SNAPSHOT_VERSION: Final = 2
_INF: Final = math.inf
_MOVE_SLACK: Final = 1e-9
"""Percentages are indexed as floats: the index takes every alert within this many
percentage points of the range, and the exact test (integers) decides."""


class SnapshotError(ValueError):
    """The bytes are not a snapshot of this evaluator's format."""


class _Index:
    """Sorted keys → alert ids, with the band around the last value that holds no key."""

    __slots__ = ("hi", "keys", "lo", "slack")

    def __init__(self, slack: float) -> None:
        self.keys: SortedDict = SortedDict()
        self.slack = slack
        self.lo: float = _INF
        self.hi: float = -_INF
        """An empty band (lo > hi) until :meth:`rebound`: every value is looked up."""

    def add(self, key: float, alert_id: str) -> None:
        ids = self.keys.get(key)
        if ids is None:
            self.keys[key] = {alert_id}
        else:
            ids.add(alert_id)
        self.lo, self.hi = _INF, -_INF

    def discard(self, key: float, alert_id: str) -> None:
        ids = self.keys.get(key)
        if ids is not None:
            ids.discard(alert_id)
            if not ids:
                del self.keys[key]

    def between(self, a: float, b: float, out: set[str]) -> None:
        """Add to ``out`` every alert keyed within ``[min(a, b), max(a, b)]`` (± slack)."""
        if a > b:
            a, b = b, a
        for key in self.keys.irange(a - self.slack, b + self.slack):
            out.update(self.keys[key])

    def rebound(self, value: float) -> None:
        """Note the band around ``value``: the open interval without a key (± slack)."""
        keys = self.keys
        i = keys.bisect_left(value - self.slack)
        j = keys.bisect_right(value + self.slack)
        if i != j:
            self.lo, self.hi = _INF, -_INF
            return
        self.lo = keys.peekitem(i - 1)[0] + self.slack if i else -_INF
        self.hi = keys.peekitem(j)[0] - self.slack if j < len(keys) else _INF

    def __len__(self) -> int:
        return len(self.keys)


class _Group:
    """The move alerts of one window length on one stream, and that window."""

    __slots__ = ("down", "fall", "rise", "up", "window", "window_s")

    def __init__(self, window_s: int, window: Window) -> None:
        self.window_s = window_s
        self.window = window
        self.up = _Index(_MOVE_SLACK)
        self.down = _Index(_MOVE_SLACK)
        self.rise = 0.0
        """The last price's rise above the window's lowest, in percent."""
        self.fall = 0.0


class _Stream:
    __slots__ = (
        "candle_open",
        "candle_revision",
        "candles",
        "due",
        "expiry",
        "gaps",
        "groups",
        "ids",
        "key",
        "last",
        "last_ts",
        "next_due",
        "pending",
        "prices",
    )

    def __init__(self, key: StreamKey) -> None:
        self.key = key
        self.candles = key[1] == Source.CANDLES.value
        self.last: int | None = None
        self.last_ts = 0
        self.candle_open = -1
        self.candle_revision = -1
        self.gaps: list[tuple[int, int]] = []
        self.prices = _Index(0)
        self.groups: dict[int, _Group] = {}
        self.pending: set[str] = set()
        """Alerts that have not seen a price yet."""
        self.due: list[tuple[int, str]] = []
        """(cool-down end, alert id): fired alerts whose condition has turned false."""
        self.expiry: list[tuple[int, str]] = []
        self.next_due: float = _INF
        self.ids: set[str] = set()
        """The live alerts of the stream."""

    def update_next_due(self) -> None:
        first_due = self.due[0][0] if self.due else _INF
        first_expiry = self.expiry[0][0] if self.expiry else _INF
        self.next_due = min(first_due, first_expiry)

    def new_window(self, window_s: int) -> Window:
        span = window_s * 1_000_000_000
        return ListWindow(span) if self.candles else MonotonicWindow(span)


class AlertRow(msgspec.Struct, array_like=True):
    """One alert's stored part: its spec and its arming state (a done alert is kept until
    deleted, so that it does not fire again)."""

    spec: AlertSpec
    state: AlertState


class StreamRow(msgspec.Struct, array_like=True):
    """One stream's stored part: the last price, the candle position, the gaps not yet
    passed, each move window's points with its last rise and fall, and the alerts waiting
    for their first price (none, once the stream has taken one)."""

    key: tuple[str, str, str]
    last: str | None
    last_ts: int
    candle_open: int
    candle_revision: int
    gaps: list[tuple[int, int]]
    windows: list[tuple[int, list[list[tuple[int, str]]], float, float]]
    pending: list[str]


@dataclass(frozen=True, slots=True)
class Delta:
    """The rows changed since the last :meth:`AlertEvaluator.delta`, encoded: each changed
    alert's row by alert id (None: the alert is gone) and each moved stream's row by
    :func:`stream_id`."""

    alerts: dict[str, bytes | None]
    streams: dict[str, bytes]

    def __bool__(self) -> bool:
        return bool(self.alerts or self.streams)


def stream_id(key: StreamKey) -> str:
    """A stream's row id: ``instrument|source|interval``."""
    return "|".join(key)


class _Snapshot(msgspec.Struct, tag="alert-evaluator"):
    v: int
    alerts: list[AlertRow]
    streams: list[StreamRow]


class _LegacyStream(StreamRow, array_like=True):
    """A stream of version 1: the row's fields, then its timers (rebuilt now, not read)."""

    due: list[tuple[int, str]]
    expiry: list[tuple[int, str]]


class _LegacySnapshot(msgspec.Struct, tag="alert-evaluator"):
    """Version 1: one blob with the timers (still read, so that a stored state survives the
    upgrade)."""

    v: int
    specs: list[AlertSpec]
    states: list[tuple[str, AlertState]]
    streams: list[_LegacyStream]

    def rows(self) -> tuple[list[AlertRow], list[StreamRow]]:
        states = dict(self.states)
        alerts = [AlertRow(spec, states[spec.alert_id]) for spec in self.specs]
        return alerts, list(self.streams)


class _Version(msgspec.Struct):
    v: int


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_Snapshot)
_LEGACY: Final = msgspec.msgpack.Decoder(_LegacySnapshot)
_VERSION: Final = msgspec.msgpack.Decoder(_Version)
_ALERT_ROW: Final = msgspec.msgpack.Decoder(AlertRow)
_STREAM_ROW: Final = msgspec.msgpack.Decoder(StreamRow)


class AlertEvaluator:
    """Fires alerts on prices: feed it tick batches, candles and feed gaps with :meth:`step`,
    the alerts' changes with :meth:`apply_changes`; it hands back the firings.

    Sans-I/O: it reads no clock (times are the inputs' own) and does no I/O, so a replay of
    the same inputs from the same snapshot gives the same firings.
    """

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._states: dict[str, AlertState] = {}
        self._streams: dict[StreamKey, _Stream] = {}
        self._moved_alerts: set[str] = set()
        """The alerts whose row may have changed since the last :meth:`delta`."""
        self._moved_streams: set[StreamKey] = set()

    # ---- alerts

    def apply_changes(
        self,
        specs: Iterable[AlertSpec],
        deleted_ids: Iterable[str] = (),
        fired: Mapping[str, int] | None = None,
    ) -> None:
        """Add or change alerts and delete others; effective from the next price.

        A spec equal to the one held changes nothing (so the main API may send every alert
        again after a restart). A changed spec arms again: with the next arming number if its
        current arming has fired, so that its next firing has a new ``fire_id``. An alert
        that is done (fired once, expired) stays known until deleted, so that sending it again
        does not make it fire again. ``fired``: the highest arming of each alert already
        fired elsewhere (the fired history: another evaluator's, or one whose state was lost);
        an alert new or changed here arms past it, so its next ``fire_id`` is not taken for
        a repeat. Raises ``ValueError`` naming the first bad spec, before changing anything.
        """
        specs = list(specs)
        rules = [compile_rule(spec) for spec in specs]
        moved = self._moved_alerts
        for alert_id in deleted_ids:
            if alert_id in self._rules:  # a row to delete
                moved.add(alert_id)
            self._remove(alert_id)
            self._states.pop(alert_id, None)
            self._rules.pop(alert_id, None)
        for rule in rules:
            alert_id = rule.spec.alert_id
            old = self._rules.get(alert_id)
            if old is not None and old.spec == rule.spec:
                continue
            moved.add(alert_id)
            state = AlertState()
            if old is not None:
                self._remove(alert_id)
                previous = self._states[alert_id]
                was_fired = previous.phase is not Phase.ARMED
                state.arming = previous.arming + 1 if was_fired else previous.arming
            done = fired.get(alert_id, 0) if fired else 0
            if state.arming <= done:
                state.arming = done + 1
            self._rules[alert_id] = rule
            self._states[alert_id] = state
            self._insert(rule, pending=True)
        for stream in self._streams.values():
            self._prune(stream)

    def _insert(self, rule: Rule, pending: bool) -> None:
        alert_id = rule.spec.alert_id
        stream = self._stream(rule.stream)
        self._moved_streams.add(rule.stream)
        stream.ids.add(alert_id)
        if pending:
            stream.pending.add(alert_id)
        if rule.condition in MOVES:
            group = stream.groups.get(rule.window_s)
            if group is None:
                group = stream.groups[rule.window_s] = _Group(
                    rule.window_s, stream.new_window(rule.window_s)
                )
            index = group.up if rule.condition is Condition.MOVE_UP else group.down
        else:
            index = stream.prices
        index.add(rule.key, alert_id)
        if rule.spec.expires_at is not None:
            heapq.heappush(stream.expiry, (rule.spec.expires_at, alert_id))
            stream.update_next_due()

    @staticmethod
    def _prune(stream: _Stream) -> None:
        """Drop the windows no live alert uses (after a change, after a price): a window
        exists exactly while a live move alert of its length does."""
        for window_s in [w for w, g in stream.groups.items() if not g.up and not g.down]:
            del stream.groups[window_s]

    def _remove(self, alert_id: str) -> None:
        """Take a live alert out of its stream's index (its rule and state stay)."""
        rule = self._rules.get(alert_id)
        if rule is None:
            return
        stream = self._streams.get(rule.stream)
        if stream is None or alert_id not in stream.ids:
            return
        self._moved_streams.add(rule.stream)
        stream.ids.discard(alert_id)
        stream.pending.discard(alert_id)
        if rule.condition in MOVES:
            group = stream.groups[rule.window_s]
            index = group.up if rule.condition is Condition.MOVE_UP else group.down
            index.discard(rule.key, alert_id)
        else:
            stream.prices.discard(rule.key, alert_id)

    def _stream(self, key: StreamKey) -> _Stream:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(key)
            self._moved_streams.add(key)
        return stream

    # ---- inputs

    def step(self, batch: TickBatch | Candle | FeedGap) -> list[AlertFired]:
        """The firings of one input, in order: a batch of trades of one instrument, a candle
        (only closed and revised candles count) or a feed gap (fires nothing, flags the
        crossing over it)."""
        if isinstance(batch, TickBatch):
            return self._ticks(batch)
        if isinstance(batch, Candle):
            return self._candle(batch)
        if isinstance(batch, FeedGap):
            stream = self._stream((batch.instrument, Source.TICKS.value, ""))
            self._moved_streams.add(stream.key)
            stream.gaps.append((batch.start_ns, batch.end_ns))
            return []
        raise TypeError(f"an alert evaluator takes ticks, candles or gaps, not {type(batch)}")

    def _ticks(self, batch: TickBatch) -> list[AlertFired]:
        n = len(batch)
        if not n:
            return []
        stream = self._stream((batch.instrument, Source.TICKS.value, ""))
        self._moved_streams.add(stream.key)
        factor = 10 ** (SCALE - batch.price_scale)
        raws: list[int] = batch.price.tolist()
        stamps: list[int] = batch.ts_event.tolist()
        fired: list[AlertFired] = []
        if not stream.ids and not stream.gaps:
            stream.last = raws[-1] * factor
            stream.last_ts = stamps[-1]
            return fired
        prices = stream.prices
        groups = list(stream.groups.values())
        for row in range(n):
            price = raws[row] * factor
            ts = stamps[row]
            if (
                prices.lo < price < prices.hi
                and ts < stream.next_due
                and not stream.pending
                and not stream.gaps
            ):
                if not groups:
                    stream.last = price
                    stream.last_ts = ts
                    continue
                bounds = _quiet_moves(groups, ts, price)
                if bounds is None:
                    stream.last = price
                    stream.last_ts = ts
                    continue
            else:
                bounds = None
            gap = self._crossed_gap(stream, ts) if stream.gaps else False
            found = self._on_price(stream, price, ts, gap, False, bounds)
            groups = list(stream.groups.values())
            if found:
                trade_id = int(batch.trade_id[row])
                exact = to_decimal(raws[row], batch.price_scale)
                for rule, arming in found:
                    fired.append(firing(rule.spec, arming, exact, ts, gap, trade_id=trade_id))
        return fired

    def _candle(self, candle: Candle) -> list[AlertFired]:
        if candle.status is CandleStatus.OPEN:
            return []
        stream = self._stream((candle.instrument, Source.CANDLES.value, candle.interval.label))
        revision = False
        if stream.candle_open >= 0:
            if candle.open_time < stream.candle_open:
                return []
            if candle.open_time == stream.candle_open:
                if candle.revision <= stream.candle_revision:
                    return []
                revision = True
        missing = (
            stream.candle_open >= 0 and candle.open_time > stream.candle_open + candle.interval.ns
        )
        gap = candle.gap or missing
        self._moved_streams.add(stream.key)
        stream.candle_open = candle.open_time
        stream.candle_revision = candle.revision
        price = candle.close_raw * 10 ** (SCALE - candle.price_scale)
        ts = candle.close_time
        found = self._on_price(stream, price, ts, gap, revision)
        return [
            firing(rule.spec, arming, candle.close, ts, gap, candle_open_time=candle.open_time)
            for rule, arming in found
        ]

    @staticmethod
    def _crossed_gap(stream: _Stream, ts: int) -> bool:
        """Whether the move to a price at ``ts`` spans a known gap (and forget passed gaps).

        A gap ``[start, end)`` is spanned by the first price at or after ``end - 1`` (the first
        trade after it) when the price before it was not already past the gap.
        """
        spanned = False
        kept = []
        for start, end in stream.gaps:
            last_ts = stream.last_ts
            if stream.last is not None and last_ts > start and last_ts >= end - 1:
                continue
            if ts >= end - 1:
                spanned = spanned or stream.last is not None
                continue
            kept.append((start, end))
        stream.gaps = kept
        return spanned

    def _on_price(
        self,
        stream: _Stream,
        price: int,
        ts: int,
        gap: bool,
        revision: bool,
        bounds: dict[int, tuple[int, int]] | None = None,
    ) -> list[tuple[Rule, int]]:
        """One price of a stream: (rule, arming) of each alert it fires, by alert id.

        ``bounds``: the windows' (lowest, highest) when the caller has already pushed the
        price into them.
        """
        previous = stream.last
        candidates: set[str] = set()
        if bounds is None:
            bounds = {}
            for window_s, group in stream.groups.items():
                window = group.window
                push = window.replace_last if revision else window.push
                bounds[window_s] = push(ts, price)
        for window_s, group in stream.groups.items():
            low, high = bounds[window_s]
            if group.up.keys:
                rise = (price - low) * 100 / low
                if not group.up.lo < rise < group.up.hi:
                    group.up.between(group.rise, rise, candidates)
                    group.up.rebound(rise)
                group.rise = rise
            if group.down.keys:
                fall = (high - price) * 100 / high
                if not group.down.lo < fall < group.down.hi:
                    group.down.between(group.fall, fall, candidates)
                    group.down.rebound(fall)
                group.fall = fall
        if ts >= stream.next_due:
            self._due(stream, ts, candidates)
        if stream.pending:
            candidates.update(stream.pending)
            stream.pending.clear()
        prices = stream.prices
        if previous is None:
            for ids in prices.keys.values():
                candidates.update(ids)
            prices.rebound(price)
        elif not prices.lo < price < prices.hi:
            prices.between(previous, price, candidates)
            prices.rebound(price)
        stream.last = price
        stream.last_ts = ts
        if not candidates:
            return []
        removed = False
        found = []
        rules, states = self._rules, self._states
        for alert_id in sorted(candidates):
            if alert_id not in stream.ids:
                continue
            rule = rules[alert_id]
            state = states[alert_id]
            low, high = bounds.get(rule.window_s, (price, price))
            was_reset = state.reset
            before = (state.phase, state.arming, was_reset, state.cooldown_until)
            if advance(rule, state, previous, price, low, high, ts):
                found.append((rule, state.arming))
            if (state.phase, state.arming, state.reset, state.cooldown_until) != before:
                self._moved_alerts.add(alert_id)
            if state.phase is Phase.DONE:
                self._remove(alert_id)
                removed = True
            elif state.reset and not was_reset and ts < state.cooldown_until:
                heapq.heappush(stream.due, (state.cooldown_until, alert_id))
                stream.update_next_due()
        if removed:
            self._prune(stream)
        return found

    def _due(self, stream: _Stream, ts: int, candidates: set[str]) -> None:
        """Expire the alerts whose time has come; take those whose cool-down ended."""
        expiry, due = stream.expiry, stream.due
        while expiry and expiry[0][0] <= ts:
            _, alert_id = heapq.heappop(expiry)
            rule = self._rules.get(alert_id)
            if rule is None or alert_id not in stream.ids:
                continue
            if rule.spec.expires_at is not None and rule.spec.expires_at <= ts:
                self._moved_alerts.add(alert_id)
                self._states[alert_id].phase = Phase.DONE
                self._remove(alert_id)
                self._prune(stream)
        while due and due[0][0] <= ts:
            candidates.add(heapq.heappop(due)[1])
        stream.update_next_due()

    # ---- durability

    def delta(self) -> Delta:
        """The rows changed since the last call (or since this evaluator was built from
        rows): what a processor stores with the offsets of a round."""
        alerts = {alert_id: self._alert_bytes(alert_id) for alert_id in sorted(self._moved_alerts)}
        streams = {
            stream_id(key): _ENCODER.encode(self._stream_row(self._streams[key]))
            for key in sorted(self._moved_streams)
        }
        self._moved_alerts.clear()
        self._moved_streams.clear()
        return Delta(alerts, streams)

    def everything(self) -> None:
        """Count every row as changed: the next :meth:`delta` holds the whole state (for a
        store that holds none of it yet)."""
        self._moved_alerts.update(self._rules)
        self._moved_streams.update(self._streams)

    def _alert_bytes(self, alert_id: str) -> bytes | None:
        row = self._alert_row(alert_id)
        return None if row is None else _ENCODER.encode(row)

    def _alert_row(self, alert_id: str) -> AlertRow | None:
        rule = self._rules.get(alert_id)
        if rule is None:
            return None
        return AlertRow(rule.spec, self._states[alert_id])

    @staticmethod
    def _stream_row(stream: _Stream) -> StreamRow:
        windows = [
            (
                window_s,
                [[(ts, str(p)) for ts, p in part] for part in group.window.points()],
                group.rise,
                group.fall,
            )
            for window_s, group in sorted(stream.groups.items())
        ]
        return StreamRow(
            key=stream.key,
            last=None if stream.last is None else str(stream.last),
            last_ts=stream.last_ts,
            candle_open=stream.candle_open,
            candle_revision=stream.candle_revision,
            gaps=list(stream.gaps),
            windows=windows,
            pending=sorted(stream.pending),
        )

    def snapshot(self) -> bytes:
        """The whole state as bytes (deterministic: the same state gives the same bytes)."""
        alerts = [self._alert_row(alert_id) for alert_id in sorted(self._rules)]
        return _ENCODER.encode(
            _Snapshot(
                v=SNAPSHOT_VERSION,
                alerts=[row for row in alerts if row is not None],
                streams=[self._stream_row(self._streams[key]) for key in sorted(self._streams)],
            )
        )

    def restore(self, data: bytes) -> None:
        """Take back exactly the state :meth:`snapshot` saved, replacing this one;
        :class:`SnapshotError` (and this evaluator unchanged) when ``data`` is not such a
        snapshot."""
        restored = self.from_snapshot(data)
        self._rules, self._states, self._streams = (
            restored._rules,
            restored._states,
            restored._streams,
        )
        self._moved_alerts, self._moved_streams = restored._moved_alerts, restored._moved_streams

    @classmethod
    def from_snapshot(cls, data: bytes) -> AlertEvaluator:
        """A new evaluator in exactly the state :meth:`snapshot` saved (a version 1
        snapshot too); :class:`SnapshotError` when ``data`` is not such a snapshot. Every
        row counts as changed (see :meth:`everything`)."""
        try:
            version = _VERSION.decode(data).v
            if version == 1:
                alerts, streams = _LEGACY.decode(data).rows()
            elif version == SNAPSHOT_VERSION:
                saved = _DECODER.decode(data)
                alerts, streams = saved.alerts, saved.streams
            else:
                raise SnapshotError(
                    f"bad evaluator snapshot: version {version}, not {SNAPSHOT_VERSION}"
                )
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"bad evaluator snapshot: {exc}") from exc
        evaluator = cls._of(alerts, streams)
        evaluator.everything()
        return evaluator

    @classmethod
    def from_rows(cls, alerts: Iterable[bytes], streams: Iterable[bytes]) -> AlertEvaluator:
        """A new evaluator in the state of the stored rows (every row :meth:`delta` handed
        out, the latest of each id, the gone ones left out); :class:`SnapshotError` when a
        row is not one. No row counts as changed."""
        try:
            alert_rows = [_ALERT_ROW.decode(data) for data in alerts]
            stream_rows = [_STREAM_ROW.decode(data) for data in streams]
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"bad evaluator row: {exc}") from exc
        return cls._of(alert_rows, stream_rows)

    @classmethod
    def _of(cls, alerts: list[AlertRow], streams: list[StreamRow]) -> AlertEvaluator:
        evaluator = cls()
        try:
            evaluator._load(alerts, streams)
        except (ValueError, KeyError) as exc:
            raise SnapshotError(f"bad evaluator snapshot: {exc}") from exc
        evaluator._moved_alerts.clear()
        evaluator._moved_streams.clear()
        return evaluator

    def _load(self, alerts: list[AlertRow], streams: list[StreamRow]) -> None:
        """The rows into the index; the timers follow from them: an expiry for each live
        alert that has one, a cool-down's end for each fired alert whose condition has
        turned false (what :meth:`_on_price` pushes and :meth:`_due` pops)."""
        for row in sorted(alerts, key=lambda row: row.spec.alert_id):
            alert_id = row.spec.alert_id
            self._rules[alert_id] = compile_rule(row.spec)
            self._states[alert_id] = row.state
        for snap in streams:
            stream = self._stream(snap.key)
            stream.last = None if snap.last is None else int(snap.last)
            stream.last_ts = snap.last_ts
            stream.candle_open = snap.candle_open
            stream.candle_revision = snap.candle_revision
            stream.gaps = list(snap.gaps)
        for row in alerts:
            state = row.state
            if state.phase is Phase.DONE:
                continue
            rule = self._rules[row.spec.alert_id]
            self._insert(rule, pending=False)
            if state.phase is Phase.FIRED and state.reset:
                heapq.heappush(
                    self._streams[rule.stream].due, (state.cooldown_until, rule.spec.alert_id)
                )
        for snap in streams:
            stream = self._streams[snap.key]
            for window_s, parts, rise, fall in snap.windows:
                group = stream.groups[window_s]
                points = [[(ts, int(p)) for ts, p in part] for part in parts]
                span = window_s * 1_000_000_000
                group.window = (ListWindow if stream.candles else MonotonicWindow).from_points(
                    span, points
                )
                group.rise, group.fall = rise, fall
            stream.pending = set(snap.pending)
        for stream in self._streams.values():
            stream.update_next_due()

    # ---- inspection

    def state_of(self, alert_id: str) -> AlertState | None:
        """The arming state of an alert (None when unknown); for tests and the API."""
        return self._states.get(alert_id)

    def __len__(self) -> int:
        """The number of live alerts (not done)."""
        return sum(len(stream.ids) for stream in self._streams.values())


def _quiet_moves(groups: list[_Group], ts: int, price: int) -> dict[int, tuple[int, int]] | None:
    """Push a price into every window; None when no move alert can change (every rise and
    fall stays in its band, and is noted), else the windows' (lowest, highest) for the full
    evaluation."""
    bounds: dict[int, tuple[int, int]] = {}
    quiet = True
    changes = []
    for group in groups:
        low, high = bounds[group.window_s] = group.window.push(ts, price)
        if not quiet:
            continue
        up, down = group.up, group.down
        rise = (price - low) * 100 / low if up.keys else group.rise
        fall = (high - price) * 100 / high if down.keys else group.fall
        if (up.keys and not up.lo < rise < up.hi) or (down.keys and not down.lo < fall < down.hi):
            quiet = False
        changes.append((group, rise, fall))
    if not quiet:
        return bounds
    for group, rise, fall in changes:
        group.rise = rise
        group.fall = fall
    return None


def fired_in(
    evaluator: AlertEvaluator, inputs: Sequence[TickBatch | Candle | FeedGap]
) -> list[AlertFired]:
    """Every firing of ``inputs`` in order (a convenience for tools and tests)."""
    return [event for item in inputs for event in evaluator.step(item)]
