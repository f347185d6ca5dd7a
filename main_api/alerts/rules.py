"""One alert's rule and arming state: the exact condition on one price, and what a price does
to the arming (see :mod:`core.alerts` for the semantics).

Prices here are integers in *price units*: the price times ``10**SCALE``, so that every price
a tick or candle can carry (at most ``MAX_SCALE`` places) is an exact integer and comparisons
need no :class:`~decimal.Decimal`. A threshold with more places than that is rounded the way
that keeps each comparison exact: up (``ceil``) for "at or above", down for "at or below".
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import msgspec

from core.alerts import AlertSpec, Arming, Condition, Source
from core.intervals import Interval
from core.numbers import MAX_SCALE

SCALE: Final = MAX_SCALE
UNIT: Final = 10**SCALE

StreamKey = tuple[str, str, str]
"""(instrument, source, interval label): one stream of prices. Ticks have interval ``""``."""

MOVES: Final = frozenset({Condition.MOVE_UP, Condition.MOVE_DOWN})


class Phase(enum.IntEnum):
    ARMED = 0
    """Fires on the next price that meets the condition."""
    FIRED = 1
    """Fired in this arming (a ``rearm`` alert): waits for its condition to be false and for
    the cool-down to pass before it arms again."""
    DONE = 2
    """A ``once`` alert that fired, or any alert that expired: never fires again."""


class AlertState(msgspec.Struct, kw_only=True, array_like=True):
    """What changes as prices come: the arming count, the phase, and for a fired ``rearm``
    alert whether its condition has been false since (``reset``) and until when it cools."""

    arming: int = 1
    phase: Phase = Phase.ARMED
    reset: bool = False
    cooldown_until: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    """An :class:`AlertSpec` compiled for evaluation."""

    spec: AlertSpec
    stream: StreamKey
    condition: Condition
    up: int
    """The threshold in price units, rounded up (``above``, ``cross-up``)."""
    down: int
    """The threshold in price units, rounded down (``below``, ``cross-down``)."""
    num: int
    den: int
    """The threshold as an exact ratio (the percentage of a move)."""
    window_s: int
    cooldown_ns: int
    rearm: bool

    @property
    def key(self) -> int | float:
        """Where the alert sits in its stream's sorted index."""
        if self.condition in MOVES:
            return float(self.spec.threshold)
        if self.condition in (Condition.ABOVE, Condition.CROSS_UP):
            return self.up
        return self.down


def stream_of(spec: AlertSpec) -> StreamKey:
    """The stream an alert watches; raises ``ValueError`` for a bad source/interval pair."""
    if spec.source is Source.TICKS:
        if spec.interval is not None:
            raise ValueError(f"alert {spec.alert_id}: an alert on ticks has no interval")
        return (spec.instrument, Source.TICKS.value, "")
    if spec.interval is None:
        raise ValueError(f"alert {spec.alert_id}: an alert on candles needs an interval")
    return (spec.instrument, Source.CANDLES.value, Interval.parse(spec.interval).label)


def compile_rule(spec: AlertSpec) -> Rule:
    """The rule of ``spec``; ``ValueError`` naming the alert when the spec cannot be evaluated."""
    threshold = spec.threshold
    if not threshold.is_finite() or threshold <= 0:
        raise ValueError(f"alert {spec.alert_id}: the threshold must be a positive number")
    if spec.condition in MOVES:
        if spec.window_s <= 0:
            raise ValueError(f"alert {spec.alert_id}: a move needs a window of at least 1 s")
        if threshold >= 100 and spec.condition is Condition.MOVE_DOWN:
            raise ValueError(f"alert {spec.alert_id}: a price cannot fall by 100% or more")
    elif spec.window_s:
        raise ValueError(f"alert {spec.alert_id}: only a move has a window")
    num, den = threshold.as_integer_ratio()
    scaled = threshold * Decimal(UNIT)
    return Rule(
        spec=spec,
        stream=stream_of(spec),
        condition=spec.condition,
        up=math.ceil(scaled),
        down=math.floor(scaled),
        num=num,
        den=den,
        window_s=spec.window_s,
        cooldown_ns=spec.cooldown_s * 1_000_000_000,
        rearm=spec.arming is Arming.REARM,
    )


def level(rule: Rule, price: int, low: int, high: int) -> bool:
    """Whether the price is on the alert's side: what must turn false to reset a fired alert.

    ``low`` and ``high`` are the lowest and highest prices in the move's window.
    """
    condition = rule.condition
    if condition is Condition.ABOVE or condition is Condition.CROSS_UP:
        return price >= rule.up
    if condition is Condition.BELOW or condition is Condition.CROSS_DOWN:
        return price <= rule.down
    if condition is Condition.MOVE_UP:
        return 100 * (price - low) * rule.den >= rule.num * low
    return 100 * (high - price) * rule.den >= rule.num * high


def triggered(rule: Rule, previous: int | None, price: int, low: int, high: int) -> bool:
    """Whether an armed alert fires on ``price`` (``previous``: the stream's price before it)."""
    condition = rule.condition
    if condition is Condition.CROSS_UP:
        return previous is not None and previous < rule.up <= price
    if condition is Condition.CROSS_DOWN:
        return previous is not None and previous > rule.down >= price
    return level(rule, price, low, high)


def advance(
    rule: Rule, state: AlertState, previous: int | None, price: int, low: int, high: int, ts: int
) -> bool:
    """What one price at ``ts`` does to one live alert; True when it fires on it.

    Safe to call on any price: an evaluator may skip a price for an alert only where this
    would change nothing, which is what the index guarantees.
    """
    if state.phase is Phase.FIRED:
        if not state.reset and not level(rule, price, low, high):
            state.reset = True
        if state.reset and ts >= state.cooldown_until:
            state.phase = Phase.ARMED
            state.arming += 1
            state.reset = False
    if state.phase is Phase.ARMED and triggered(rule, previous, price, low, high):
        if rule.rearm:
            state.phase = Phase.FIRED
            state.reset = False
            state.cooldown_until = ts + rule.cooldown_ns
        else:
            state.phase = Phase.DONE
        return True
    return False
