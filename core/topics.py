"""Names of the bus topics: every producer and consumer spells them from here.

Keys, value schemas and versions are in :mod:`core.codecs` and ``docs/topics.md``; each
topic's message type and codec in :mod:`core.topic_codecs`.
"""

from __future__ import annotations

from typing import Final

TICKS: Final = "md.ticks"
"""Micro-batches of ticks; key: the instrument; value: :func:`core.codecs.encode_tick_batch`."""

CANDLES: Final = "md.candles"
"""Candle updates; key: :func:`core.codecs.candle_key`; value: :func:`core.codecs.encode_candle`."""

TICKS_REJECTED: Final = "md.ticks.rejected"
"""Ticks and messages refused anywhere; value: :func:`core.codecs.encode_rejected`."""

TRADING_COMMANDS: Final = "trading.commands"
"""Commands internal producers send the trading service (place, cancel, amend, deposit, kill
switch); key: the account id; value: :func:`core.trading_commands.encode_command`."""

TRADING_EVENTS: Final = "trading.events"
"""Order and account events published by the trading service; key: the account id; value:
:func:`core.trading_events.encode_record` (each event with its notification id)."""

AUTH_EVENTS: Final = "auth.events"
"""Revocations and plan changes published by the auth service; value:
:func:`core.auth_events.encode_event`."""

ALERTS_EVENTS: Final = "alerts.events"
"""Price alerts that fired, published by the alert evaluator; key: the account id; value:
:func:`core.alerts.encode_fired`."""

ALL_TOPICS: Final = (
    TICKS, CANDLES, TICKS_REJECTED, TRADING_COMMANDS, TRADING_EVENTS, AUTH_EVENTS, ALERTS_EVENTS
)  # fmt: skip
"""Every topic of the platform, e.g. for the cluster launcher that creates them."""
