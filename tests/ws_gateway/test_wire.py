"""Every server message type, byte for byte as JSON, from the sans-I/O encoders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.candles import CandleStatus
from core.gaps import FeedGap, GapReason
from ws_gateway.framing import text_frame
from ws_gateway.wire import (
    CANDLES,
    MAX_DEPTH,
    TICKS,
    ChannelFrames,
    ChannelKey,
    ErrorCode,
    RequestError,
    candle_json,
    conflated,
    error,
    gap_message,
    heartbeat,
    nesting_depth,
    parse_json,
    pong,
    subscribed,
    tick_json,
    unsubscribed,
)

from .market import BTC, gapped_updates, small_batches, updates

CANDLE_KEY = ChannelKey(CANDLES, BTC, "1s")
TICK_KEY = ChannelKey(TICKS, BTC)


def loads(data: bytes) -> Any:
    return json.loads(data)


def test_candle_object_has_exact_strings_and_epoch_milliseconds() -> None:
    candle = next(c for c in updates() if c.status is CandleStatus.CLOSED)
    body = loads(candle_json(candle))
    assert list(body) == [
        "instrument",
        "interval",
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "vwap",
        "taker_buy_volume",
        "trades",
        "first_trade_id",
        "last_trade_id",
        "revision",
        "status",
        "gap",
    ]
    assert body["gap"] is False
    assert body["open_time"] == candle.open_time // 1_000_000
    assert body["open"] == str(candle.open)
    assert body["close"] == str(candle.close)
    assert body["volume"] == str(candle.volume)
    assert body["quote_volume"] == str(candle.quote_volume)
    assert body["vwap"] == str(candle.vwap)
    assert body["taker_buy_volume"] == str(candle.taker_buy_volume)
    assert (body["trades"], body["revision"], body["status"]) == (
        candle.trades,
        candle.revision,
        "closed",
    )
    assert (body["first_trade_id"], body["last_trade_id"]) == (
        candle.first_trade_id,
        candle.last_trade_id,
    )


def test_candle_object_says_when_the_candle_overlaps_a_feed_gap() -> None:
    stream = gapped_updates()
    flagged = [c for c in stream.after if c.gap]
    assert flagged  # the engine flagged the candles over the gap
    for candle in stream.before + stream.after:
        assert loads(candle_json(candle))["gap"] is candle.gap


def test_gap_message_widens_the_span_to_whole_milliseconds() -> None:
    ms = 1_767_225_600_000
    gap = FeedGap(
        instrument="KRAKEN:BTC/USD",
        start_ns=ms * 1_000_000 + 999_999,
        end_ns=(ms + 5_000) * 1_000_000 + 1,
        reason=GapReason.SEQUENCE,
        detail="trade ids 101..104 missing",
        ts_recv=(ms + 6_000) * 1_000_000,
    )
    assert loads(gap_message(gap)) == {
        "type": "gap",
        "instrument": "KRAKEN:BTC/USD",
        "start": ms,  # floored
        "end": ms + 5_001,  # rounded up: the span never shrinks
        "reason": "sequence",
        "detail": "trade ids 101..104 missing",
    }
    exact = FeedGap(
        instrument=BTC,
        start_ns=ms * 1_000_000,
        end_ns=(ms + 1) * 1_000_000,
        reason=GapReason.DISCONNECTED,
    )
    assert (loads(gap_message(exact))["start"], loads(gap_message(exact))["end"]) == (ms, ms + 1)
    assert loads(gap_message(exact))["detail"] == ""


def test_replies() -> None:
    assert loads(subscribed(1, CANDLE_KEY, "e1")) == {
        "type": "subscribed",
        "id": 1,
        "channel": "candles",
        "instrument": BTC,
        "interval": "1s",
        "epoch": "e1",
    }
    assert loads(subscribed("a", TICK_KEY, "e1")) == {
        "type": "subscribed",
        "id": "a",
        "channel": "ticks",
        "instrument": BTC,
        "epoch": "e1",
    }
    assert loads(unsubscribed(3, CANDLE_KEY)) == {
        "type": "unsubscribed",
        "id": 3,
        "channel": "candles",
        "instrument": BTC,
        "interval": "1s",
    }
    assert loads(pong(None)) == {"type": "pong", "id": None}
    assert loads(heartbeat(1_767_225_600_000)) == {"type": "heartbeat", "ts": 1_767_225_600_000}
    assert loads(conflated(CANDLE_KEY, 7)) == {
        "type": "conflated",
        "channel": "candles",
        "instrument": BTC,
        "interval": "1s",
        "dropped": 7,
    }


def test_errors() -> None:
    assert loads(error(4, ErrorCode.BAD_INTERVAL, "no", "interval")) == {
        "type": "error",
        "id": 4,
        "code": "bad_interval",
        "field": "interval",
        "message": "no",
    }
    refused = RequestError(ErrorCode.RATE_LIMITED, "slow down")
    assert loads(refused.payload()) == {
        "type": "error",
        "id": None,
        "code": "rate_limited",
        "field": None,
        "message": "slow down",
    }
    assert str(refused) == "slow down"


def test_nesting_depth_counts_brackets_outside_strings() -> None:
    assert nesting_depth('{"op":"ping"}') == 1
    assert nesting_depth('{"a":[1,{"b":[]}],"c":{}}') == 4
    assert nesting_depth('{"s":"[[[{{{","t":"\\"[[["}') == 1
    assert nesting_depth("[" * 984) == 984
    assert nesting_depth("nope") == 0


def test_json_nested_beyond_the_bound_is_refused_before_decoding() -> None:
    with pytest.raises(RequestError) as refused:
        parse_json('{"op":"ping","x":' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}")
    assert refused.value.code is ErrorCode.BAD_REQUEST
    assert f"nested deeper than {MAX_DEPTH} levels" in refused.value.message
    with pytest.raises(RequestError) as refused:
        parse_json('{"op":"ping","id":1,"x":' + "[" * 100_000)
    assert refused.value.code is ErrorCode.BAD_REQUEST
    body = parse_json('{"op":"ping","x":' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}")
    assert body["op"] == "ping"


def test_channel_messages_share_one_prefix() -> None:
    candle = updates()[0]
    frames = ChannelFrames(CANDLE_KEY, "e1")
    assert loads(frames.update(12, candle_json(candle))) == {
        "type": "candle",
        "channel": "candles",
        "instrument": BTC,
        "interval": "1s",
        "seq": 12,
        "candle": loads(candle_json(candle)),
    }
    assert loads(frames.snapshot(12, False, [candle_json(candle)])) == {
        "type": "snapshot",
        "channel": "candles",
        "instrument": BTC,
        "interval": "1s",
        "epoch": "e1",
        "seq": 12,
        "reset": False,
        "candles": [loads(candle_json(candle))],
    }
    assert loads(frames.snapshot(0, True, []))["candles"] == []
    batch = small_batches((BTC,), rows=3)[0]
    items = tick_json(batch, 0, 3)
    ticks = ChannelFrames(TICK_KEY, "e1")
    assert loads(ticks.update(5, b"[" + b",".join(items) + b"]")) == {
        "type": "tick",
        "channel": "ticks",
        "instrument": BTC,
        "seq": 5,
        "ticks": [loads(item) for item in items],
    }
    assert loads(ticks.snapshot(5, True, items[:1])) == {
        "type": "snapshot",
        "channel": "ticks",
        "instrument": BTC,
        "epoch": "e1",
        "seq": 5,
        "reset": True,
        "ticks": [loads(items[0])],
    }


def test_text_frames_for_every_length_class() -> None:
    for size, header in (
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ):
        payload = b"x" * size
        assert text_frame(payload) == header + payload
