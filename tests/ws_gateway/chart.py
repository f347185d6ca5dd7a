"""What a chart does with the gateway's candle messages, for the tests to compare against."""

from __future__ import annotations

import json
from typing import Any

from core.candles import Candle
from ws_gateway.wire import candle_json

from .market import final


def as_json(candle: Candle) -> dict[str, Any]:
    """A candle as the protocol's JSON object."""
    body: dict[str, Any] = json.loads(candle_json(candle))
    return body


def apply(state: dict[int, dict[str, Any]], message: dict[str, Any]) -> None:
    """What a chart does with a candle message or a snapshot: upsert by open time, keeping
    the higher revision (a reset snapshot first drops what it held)."""
    bars = message["candles"] if message["type"] == "snapshot" else [message["candle"]]
    if message["type"] == "snapshot" and message["reset"]:
        state.clear()
    for bar in bars:
        known = state.get(bar["open_time"])
        if known is None or known["revision"] <= bar["revision"]:
            state[bar["open_time"]] = bar


def expected_state(candles: list[Candle]) -> dict[int, dict[str, Any]]:
    """What a chart holds after every one of ``candles``: each one's newest version."""
    return {t // 1_000_000: as_json(c) for t, c in final(candles).items()}
