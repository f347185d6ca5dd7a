"""Price alerts: what an alert asks (:class:`AlertSpec`), shared by the main API, which keeps
them, and the alert evaluator, which fires them; and what a firing says (:class:`AlertFired`,
published on ``alerts.events``).

An alert watches one instrument on a **source**: its trades (``ticks``) or its closed candles
of one interval (``candles``, with ``interval``). Its **condition** is one of:

- ``above`` / ``below``: the price is at or above (at or below) ``threshold``; it fires on the
  first price that is, including the first one seen when the alert is created;
- ``cross-up`` / ``cross-down``: the price moves from below ``threshold`` to at or above it
  (from above to at or below); it needs a price before and a price after, so an alert created
  while the price is already past does not fire until it comes back and crosses;
- ``move-up`` / ``move-down``: the price rose (fell) by at least ``threshold`` percent within
  the last ``window_s`` seconds (measured from the lowest (highest) price in the window).

**Arming**: a ``once`` alert ends when it fires. A ``rearm`` alert arms again after
``cooldown_s`` seconds *and* once its condition has been false (a price back on the other
side), so one crossing fires once however long the price stays past. An alert with
``expires_at`` ends then, fired or not.

A firing is identified by ``fire_id`` = ``<alert_id>:<arming>``, where ``arming`` counts the
alert's armings from 1: the same alert firing twice for the same arming (a replay, a restart,
a second evaluator) carries the same ``fire_id``, and every consumer drops the repeat. Prices
are exact decimals, times UTC nanoseconds. :func:`decode_fired` trusts nothing: whatever is
wrong, it raises :class:`~core.codecs.CodecError` with one of our reason codes.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Annotated, Final

import msgspec

from core.codecs import CodecError, decode_versioned
from core.instruments import INSTRUMENT_PATTERN

VERSION: Final = 1

MAX_FIRED_BYTES: Final = 4 * 1024
"""A firing is small; a larger message is refused before it is parsed."""

AccountId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Nanos = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
AlertId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
FireId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}:[0-9]{1,18}$")]
Instrument = Annotated[str, msgspec.Meta(pattern=f"^{INSTRUMENT_PATTERN}$")]
IntervalLabel = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,4}[smhdw]$")]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=366 * 86_400)]


class Condition(enum.StrEnum):
    ABOVE = "above"
    BELOW = "below"
    CROSS_UP = "cross-up"
    CROSS_DOWN = "cross-down"
    MOVE_UP = "move-up"
    MOVE_DOWN = "move-down"


class Source(enum.StrEnum):
    TICKS = "ticks"
    CANDLES = "candles"
    """Closed candles of the alert's ``interval`` (their close price)."""


class Arming(enum.StrEnum):
    ONCE = "once"
    REARM = "rearm"


class AlertSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One alert as its owner set it (the main API keeps it, the evaluator reads it)."""

    alert_id: AlertId
    account: AccountId
    instrument: Instrument
    condition: Condition
    threshold: Decimal
    """A price (``above`` ... ``cross-down``) or a percentage (``move-up``, ``move-down``)."""
    source: Source = Source.TICKS
    interval: IntervalLabel | None = None
    """The candles' interval, for ``source: candles`` (None for ticks)."""
    window_s: Seconds = 0
    """The window of a move (``move-up``, ``move-down``), else 0."""
    arming: Arming = Arming.ONCE
    cooldown_s: Seconds = 0
    expires_at: Nanos | None = None


class AlertFired(msgspec.Struct, frozen=True, kw_only=True, tag="alert-fired", tag_field="kind"):
    """An alert fired: on the price ``price`` of the trade ``trade_id`` (ticks) or of the candle
    that opened at ``candle_open_time`` (candles), at ``ts`` (that trade's or candle's time).
    ``gap``: the crossing happened across a feed gap, so the price may have crossed earlier
    than seen."""

    fire_id: FireId
    alert_id: AlertId
    account: AccountId
    instrument: Instrument
    condition: Condition
    threshold: Decimal
    price: Decimal
    ts: Nanos
    trade_id: int | None = None
    candle_open_time: Nanos | None = None
    gap: bool = False
    v: int = VERSION


def fired(
    spec: AlertSpec,
    arming: int,
    price: Decimal,
    ts: int,
    gap: bool,
    trade_id: int | None = None,
    candle_open_time: int | None = None,
) -> AlertFired:
    """The firing of ``spec``'s ``arming`` on ``price`` at ``ts``."""
    return AlertFired(
        fire_id=f"{spec.alert_id}:{arming}",
        alert_id=spec.alert_id,
        account=spec.account,
        instrument=spec.instrument,
        condition=spec.condition,
        threshold=spec.threshold,
        price=price,
        ts=ts,
        trade_id=trade_id,
        candle_open_time=candle_open_time,
        gap=gap,
    )


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(AlertFired)


def encode_fired(event: AlertFired) -> bytes:
    """The value of a message on ``alerts.events``."""
    return _ENCODER.encode(event)


def fired_key(event: AlertFired) -> bytes:
    """The message key on ``alerts.events``: the account id in decimal (one account's
    firings keep their order)."""
    return str(event.account).encode()


def decode_fired(data: bytes) -> AlertFired:
    """A message of ``alerts.events``; :class:`CodecError` when it is not a valid one."""
    if len(data) > MAX_FIRED_BYTES:
        raise CodecError(
            f"bad alert message: at most {MAX_FIRED_BYTES} bytes, got {len(data)}", "too_large"
        )
    return decode_versioned(_DECODER, data, "alert", VERSION, v_has_default=True)
