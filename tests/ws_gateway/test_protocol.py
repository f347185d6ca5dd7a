"""The sans-I/O protocol: every request, every error, with no socket anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.intervals import Interval
from ws_gateway.auth import ANONYMOUS, Principal
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.settings import GatewaySettings, Limits
from ws_gateway.wire import (
    CANDLES,
    TICKS,
    ChannelKey,
    ErrorCode,
    Ping,
    RequestError,
    Resume,
    Subscribe,
    Unsubscribe,
)

BTC = "SYNTH:BTCUSD"
CANDLE_1M = ChannelKey(CANDLES, BTC, "1m")


def protocol(principal: Principal = ANONYMOUS, **limits: Any) -> ConnectionProtocol:
    return ConnectionProtocol(GatewaySettings(limits=Limits(**limits)), principal, now=0.0)


def send(proto: ConnectionProtocol, body: object, now: float = 0.0) -> Any:
    frame = body if isinstance(body, str | bytes) else json.dumps(body)
    return proto.receive(frame, now)


def refused(proto: ConnectionProtocol, body: object, now: float = 0.0) -> RequestError:
    with pytest.raises(RequestError) as caught:
        send(proto, body, now)
    return caught.value


def error_of(exc: RequestError) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(exc.payload())
    return message


# -- requests ---------------------------------------------------------------------------------


def test_subscribe_to_candles_with_a_snapshot_size() -> None:
    request = send(
        protocol(),
        {
            "op": "subscribe",
            "id": 1,
            "channel": "candles",
            "instrument": BTC,
            "interval": "1m",
            "snapshot": 300,
        },
    )
    assert request == Subscribe(1, CANDLE_1M, 300)


def test_subscribe_to_ticks_needs_no_interval() -> None:
    request = send(protocol(), {"op": "subscribe", "id": 2, "channel": "ticks", "instrument": BTC})
    assert request == Subscribe(2, ChannelKey(TICKS, BTC), None)


def test_unsubscribe_from_a_held_channel() -> None:
    proto = protocol()
    proto.added(CANDLE_1M)
    request = send(
        proto,
        {"op": "unsubscribe", "id": 3, "channel": "candles", "instrument": BTC, "interval": "1m"},
    )
    assert request == Unsubscribe(3, CANDLE_1M)


def test_resume_carries_the_last_seq_and_the_epoch() -> None:
    request = send(
        protocol(),
        {
            "op": "resume",
            "id": 4,
            "channel": "candles",
            "instrument": BTC,
            "interval": "1m",
            "seq": 123,
            "epoch": "abc",
        },
    )
    assert request == Resume(4, CANDLE_1M, 123, "abc", None)


def test_ping_with_a_string_id() -> None:
    assert send(protocol(), {"op": "ping", "id": "p-1"}) == Ping("p-1")


def test_a_request_without_id_is_answered_with_a_null_id() -> None:
    assert send(protocol(), {"op": "ping"}) == Ping(None)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["{not json", "[1, 2]", '"text"', "", "null"])
def test_bad_json_or_not_an_object_is_a_bad_request(frame: str) -> None:
    exc = refused(protocol(), frame)
    assert exc.code is ErrorCode.BAD_REQUEST
    assert error_of(exc) == {
        "type": "error",
        "id": None,
        "code": "bad_request",
        "field": None,
        "message": exc.message,
    }


def test_binary_frames_are_a_bad_request() -> None:
    exc = refused(protocol(), b'{"op":"ping"}')
    assert exc.code is ErrorCode.BAD_REQUEST
    assert "text" in exc.message


def test_unknown_op_names_the_field_and_echoes_the_id() -> None:
    exc = refused(protocol(), {"op": "subscribe_all", "id": 7})
    assert (exc.code, exc.field, exc.id) == (ErrorCode.BAD_REQUEST, "op", 7)


def test_missing_op() -> None:
    exc = refused(protocol(), {"id": 7})
    assert (exc.code, exc.field, exc.id) == (ErrorCode.BAD_REQUEST, "op", 7)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"op": "subscribe", "id": 1, "instrument": BTC, "interval": "1m"}, "channel"),
        ({"op": "subscribe", "id": 1, "channel": "candles", "interval": "1m"}, "instrument"),
        ({"op": "subscribe", "id": 1, "channel": "candles", "instrument": BTC}, "interval"),
        ({"op": "resume", "id": 1, "channel": "ticks", "instrument": BTC}, "seq"),
    ],
)
def test_missing_fields_are_named(body: dict[str, Any], field: str) -> None:
    exc = refused(protocol(), body)
    assert (exc.code, exc.field, exc.id) == (ErrorCode.BAD_REQUEST, field, 1)
    assert f"`{field}`" in exc.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"op": "subscribe", "id": 1, "channel": 5, "instrument": BTC}, "channel"),
        ({"op": "subscribe", "id": 1, "channel": "ticks", "instrument": ["X"]}, "instrument"),
        (
            {"op": "subscribe", "id": 1, "channel": "candles", "instrument": BTC, "interval": 60},
            "interval",
        ),
        (
            {"op": "subscribe", "id": 1, "channel": "ticks", "instrument": BTC, "snapshot": "9"},
            "snapshot",
        ),
        (
            {"op": "subscribe", "id": 1, "channel": "ticks", "instrument": BTC, "snapshot": -1},
            "snapshot",
        ),
        (
            {"op": "subscribe", "id": 1, "channel": "ticks", "instrument": BTC, "snapshot": True},
            "snapshot",
        ),
        ({"op": "resume", "id": 1, "channel": "ticks", "instrument": BTC, "seq": 1.5}, "seq"),
        ({"op": "resume", "id": 1, "channel": "ticks", "instrument": BTC, "seq": -2}, "seq"),
        (
            {"op": "resume", "id": 1, "channel": "ticks", "instrument": BTC, "seq": 1, "epoch": 3},
            "epoch",
        ),
        ({"op": "ping", "id": 1.5}, "id"),
        ({"op": "ping", "id": -1}, "id"),
        ({"op": "ping", "id": True}, "id"),
        ({"op": "ping", "id": "x" * 65}, "id"),
    ],
)
def test_fields_of_the_wrong_type_are_named(body: dict[str, Any], field: str) -> None:
    exc = refused(protocol(), body)
    assert (exc.code, exc.field) == (ErrorCode.BAD_REQUEST, field)
    if field != "id":
        assert exc.id == 1


def test_unknown_channel() -> None:
    exc = refused(protocol(), {"op": "subscribe", "id": 1, "channel": "trades", "instrument": BTC})
    assert (exc.code, exc.field) == (ErrorCode.BAD_REQUEST, "channel")
    assert "orders" in exc.message


def test_malformed_instrument() -> None:
    exc = refused(
        protocol(), {"op": "subscribe", "id": 1, "channel": "ticks", "instrument": "btcusd"}
    )
    assert (exc.code, exc.field) == (ErrorCode.BAD_REQUEST, "instrument")


@pytest.mark.parametrize(
    ("interval", "hint"),
    [("1 minute", "expected a count"), ("60s", "use '1m'"), ("2m", "not served"), ("", "")],
)
def test_bad_interval(interval: str, hint: str) -> None:
    exc = refused(
        protocol(),
        {"op": "subscribe", "id": 1, "channel": "candles", "instrument": BTC, "interval": interval},
    )
    assert (exc.code, exc.field) == (ErrorCode.BAD_INTERVAL, "interval")
    assert hint in exc.message


def test_a_served_interval_outside_the_defaults_is_accepted() -> None:
    settings = GatewaySettings(intervals=(Interval.parse("2m"),))
    proto = ConnectionProtocol(settings, ANONYMOUS, now=0.0)
    body = {"op": "subscribe", "id": 1, "channel": "candles", "instrument": BTC, "interval": "2m"}
    assert proto.receive(json.dumps(body), 0.0) == Subscribe(
        1, ChannelKey(CANDLES, BTC, "2m"), None
    )


def test_snapshot_larger_than_allowed() -> None:
    exc = refused(
        protocol(),
        {
            "op": "subscribe",
            "id": 1,
            "channel": "candles",
            "instrument": BTC,
            "interval": "1m",
            "snapshot": 1_000_000,
        },
    )
    assert (exc.code, exc.field) == (ErrorCode.BAD_REQUEST, "snapshot")


def test_too_many_subscriptions_but_resubscribing_a_held_channel_is_fine() -> None:
    proto = protocol(max_subscriptions=2)
    proto.added(ChannelKey(TICKS, "SYNTH:A"))
    proto.added(ChannelKey(TICKS, "SYNTH:B"))
    exc = refused(proto, {"op": "subscribe", "id": 9, "channel": "ticks", "instrument": BTC})
    assert (exc.code, exc.field, exc.id) == (ErrorCode.TOO_MANY_SUBSCRIPTIONS, "channel", 9)
    again = send(proto, {"op": "subscribe", "id": 10, "channel": "ticks", "instrument": "SYNTH:A"})
    assert isinstance(again, Subscribe)
    proto.removed(ChannelKey(TICKS, "SYNTH:A"))
    assert isinstance(
        send(proto, {"op": "subscribe", "id": 11, "channel": "ticks", "instrument": BTC}),
        Subscribe,
    )


def test_unsubscribe_from_a_channel_not_held() -> None:
    exc = refused(protocol(), {"op": "unsubscribe", "id": 3, "channel": "ticks", "instrument": BTC})
    assert (exc.code, exc.field, exc.id) == (ErrorCode.NOT_SUBSCRIBED, "channel", 3)


def test_too_large_frame_is_refused_before_parsing() -> None:
    proto = protocol(max_frame_bytes=100)
    exc = refused(proto, json.dumps({"op": "ping", "id": 1, "pad": "x" * 200}))
    assert exc.code is ErrorCode.FRAME_TOO_LARGE
    assert "100" in exc.message
    assert send(proto, {"op": "ping", "id": 2}) == Ping(2)


def test_frame_size_counts_utf8_bytes() -> None:
    proto = protocol(max_frame_bytes=100)
    exc = refused(proto, json.dumps({"op": "ping", "x": "é" * 45}, ensure_ascii=False))
    assert exc.code is ErrorCode.FRAME_TOO_LARGE


def test_rate_limited_past_the_burst_then_refilled_by_time() -> None:
    proto = protocol(rate=10.0, burst=3, max_rate_violations=5)
    for _ in range(3):
        assert send(proto, {"op": "ping", "id": 1}, now=0.0) == Ping(1)
    exc = refused(proto, {"op": "ping", "id": 1}, now=0.0)
    assert exc.code is ErrorCode.RATE_LIMITED
    assert proto.violations == 1
    assert not proto.abusive
    assert send(proto, {"op": "ping", "id": 1}, now=0.1) == Ping(1)
    assert proto.violations == 0


def test_a_client_that_keeps_flooding_is_abusive() -> None:
    proto = protocol(rate=1.0, burst=1, max_rate_violations=3)
    send(proto, {"op": "ping"})
    for _ in range(3):
        refused(proto, {"op": "ping"})
    assert proto.abusive


def test_unauthorized_channel_for_the_principal() -> None:
    candles_only = Principal("bot", frozenset({"read:candles"}))
    proto = protocol(candles_only)
    exc = refused(proto, {"op": "subscribe", "id": 5, "channel": "ticks", "instrument": BTC})
    assert (exc.code, exc.field, exc.id) == (ErrorCode.UNAUTHORIZED, "channel", 5)
    assert "bot" in exc.message
    exc = refused(
        protocol(candles_only),
        {"op": "resume", "id": 6, "channel": "ticks", "instrument": BTC, "seq": 1},
    )
    assert exc.code is ErrorCode.UNAUTHORIZED
    allowed = send(
        proto,
        {"op": "subscribe", "id": 7, "channel": "candles", "instrument": BTC, "interval": "1m"},
    )
    assert isinstance(allowed, Subscribe)


def test_wildcard_permission_reads_everything() -> None:
    proto = protocol(Principal("ops", frozenset({"read:*"})))
    assert isinstance(
        send(proto, {"op": "subscribe", "channel": "ticks", "instrument": BTC}), Subscribe
    )


def test_no_permissions_at_all() -> None:
    proto = protocol(Principal("nobody"))
    exc = refused(proto, {"op": "subscribe", "channel": "ticks", "instrument": BTC})
    assert exc.code is ErrorCode.UNAUTHORIZED
