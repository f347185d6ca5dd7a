"""Coinbase Exchange protocol: subscribe, matches and last_match, heartbeats, times, bad frames."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ticks import Side, Tick
from ingest.venues.base import MAX_BAD_PAYLOAD, LatestTrade, Parsed
from ingest.venues.coinbase import CoinbaseExchange
from ingest.venues.fields import rfc3339_to_ns
from tests.ingest.venues.fakes.binance import file_ticks
from tests.ingest.venues.fakes.coinbase import (
    CoinbaseScript,
    as_last_match,
    coinbase_frames,
    coinbase_time,
)

BASE = "wss://ws-feed.exchange.coinbase.com"
RECV = 1_767_225_700_000_000_000
MATCH = {
    "type": "match",
    "trade_id": 10,
    "sequence": 50,
    "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
    "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
    "time": "2014-11-07T08:19:27.028459Z",
    "product_id": "BTC-USD",
    "size": "5.23512000",
    "price": "400.23",
    "side": "sell",
}
HEARTBEAT = {
    "type": "heartbeat",
    "sequence": 90,
    "last_trade_id": 20,
    "product_id": "BTC-USD",
    "time": "2014-11-07T08:19:28.464459Z",
}
T_MATCH = 1415348367028459000
"""``2014-11-07T08:19:27.028459Z`` in epoch nanoseconds."""


def parse(message: Mapping[str, object] | str, products: tuple[str, ...] = ("BTC-USD",)) -> Parsed:
    frame = message if isinstance(message, str) else json.dumps(message)
    return CoinbaseExchange(products).parse(frame, RECV)


def only_tick(parsed: Parsed) -> Tick:
    assert (parsed.bad, parsed.error) == ([], None)
    (tick,) = parsed.ticks
    return tick


# -- connecting and subscribing ----------------------------------------------------------------


def test_one_url_for_all_products_and_a_subscribe_frame_for_matches_and_heartbeat() -> None:
    protocol = CoinbaseExchange()
    assert protocol.connect_url(BASE, ["btc-usd", "ETH-USD"]) == BASE
    (frame,) = protocol.subscribe(["btc-usd", "ETH-USD"])
    assert json.loads(frame) == {
        "type": "subscribe",
        "product_ids": ["BTC-USD", "ETH-USD"],
        "channels": ["matches", "heartbeat"],
    }


@pytest.mark.parametrize("product", ["BTCUSD", "BTC/USD", "", "BTC-USD-X"])
def test_malformed_product_ids_are_refused_up_front(product: str) -> None:
    with pytest.raises(ValueError, match="product id"):
        CoinbaseExchange().subscribe([product])


def test_a_subscription_without_products_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one product"):
        CoinbaseExchange().subscribe([])


def test_instrument_is_coinbase_and_the_product_id() -> None:
    assert CoinbaseExchange().instrument("btc-usd") == "COINBASE:BTC-USD"


def test_a_url_that_is_not_a_websocket_url_is_refused() -> None:
    with pytest.raises(ValueError, match="ws://"):
        CoinbaseExchange().connect_url("https://example.invalid", ["BTC-USD"])


# -- matches ------------------------------------------------------------------------------------


def test_match_becomes_a_tick_with_exact_microsecond_time() -> None:
    tick = only_tick(parse(MATCH))
    assert tick == Tick(
        "COINBASE:BTC-USD", 10, Decimal("400.23"), Decimal("5.23512"), Side.BUY, T_MATCH, RECV
    )
    assert str(tick.size) == "5.23512000"


@pytest.mark.parametrize(("maker_side", "aggressor"), [("sell", Side.BUY), ("buy", Side.SELL)])
def test_side_is_the_makers_so_the_aggressor_is_the_opposite(
    maker_side: str, aggressor: Side
) -> None:
    assert only_tick(parse({**MATCH, "side": maker_side})).side is aggressor


def test_last_match_is_the_same_trade_marked_as_a_snapshot() -> None:
    live = parse(MATCH)
    again = parse({**MATCH, "type": "last_match"})
    assert again.snapshot
    assert not live.snapshot
    assert again.ticks == live.ticks


def test_match_without_order_ids_still_gives_its_tick() -> None:
    message = {k: v for k, v in MATCH.items() if not k.endswith("order_id")}
    assert only_tick(parse(message)).trade_id == 10


def test_products_are_known_from_construction_connect_or_subscribe() -> None:
    protocol = CoinbaseExchange()
    assert protocol.parse(json.dumps(MATCH), RECV).bad[0].reason == "unknown_symbol"
    protocol.subscribe(["btc-usd"])
    assert protocol.parse(json.dumps(MATCH), RECV).ticks


# -- other messages ------------------------------------------------------------------------------


def test_the_subscriptions_ack_is_a_sign_of_life() -> None:
    ack = {"type": "subscriptions", "channels": [{"name": "matches", "product_ids": ["BTC-USD"]}]}
    assert parse(ack) == Parsed(alive=True)


def test_a_heartbeat_is_a_sign_of_life_that_names_the_products_latest_trade_id() -> None:
    latest = LatestTrade("COINBASE:BTC-USD", 20, rfc3339_to_ns("2014-11-07T08:19:28.464459Z"))
    assert parse(HEARTBEAT) == Parsed(latest=[latest], alive=True)


@pytest.mark.parametrize(
    ("changes", "reason", "named"),
    [
        ({"product_id": "ETH-USD"}, "unknown_symbol", "product_id 'ETH-USD'"),
        ({"time": "2014-11-07T08:19:28"}, "bad_time", "time '2014-11-07T08:19:28'"),
        ({"last_trade_id": -3}, "bad_field", "last_trade_id"),
    ],
)
def test_a_bad_heartbeat_is_refused_naming_the_field(
    changes: dict[str, object], reason: str, named: str
) -> None:
    parsed = parse({**HEARTBEAT, **changes})
    (bad,) = parsed.bad
    assert (bad.reason, parsed.latest, parsed.error) == (reason, [], None)
    assert named in bad.detail


@pytest.mark.parametrize(
    "message",
    [
        {"type": "ticker", "sequence": 1, "product_id": "BTC-USD", "price": "1"},
        {"type": "status", "products": []},
        {"type": "some_new_type"},
    ],
)
def test_message_types_it_does_not_read_are_ignored(message: dict[str, object]) -> None:
    assert parse(message) == Parsed(alive=True)


def test_error_message_becomes_the_venue_error() -> None:
    message = {"type": "error", "message": "Failed to subscribe", "reason": "BTC-XYZ is not valid"}
    parsed = parse(message)
    assert parsed.error == "coinbase error: Failed to subscribe (BTC-XYZ is not valid)"
    assert (parsed.ticks, parsed.bad) == ([], [])


# -- malformed frames ------------------------------------------------------------------------------


BAD_FRAMES = [
    ("{", "not_json", "not JSON"),
    (b"\xff", "not_json", "not JSON"),
    ("0\x00", "not_json", "not JSON"),
    ('{"type": "match"} x', "not_json", "not JSON"),
    ("[]", "unknown_shape", "an array"),
    ("7", "unknown_shape", "a number"),
    ('{"trade_id": 1}', "unknown_shape", "'type'"),
    ('{"type": 5}', "unknown_shape", "'type'"),
    ({k: v for k, v in MATCH.items() if k != "trade_id"}, "bad_field", "`trade_id`"),
    ({**MATCH, "trade_id": -1}, "bad_field", "trade_id"),
    ({**MATCH, "trade_id": "10"}, "bad_field", "trade_id"),
    ({**MATCH, "sequence": None}, "bad_field", "sequence"),
    ({**MATCH, "side": "up"}, "bad_field", "side"),
    ({**MATCH, "price": 400.23}, "bad_field", "price"),
    ({**MATCH, "time": 1415348367}, "bad_field", "time"),
    ({**HEARTBEAT, "last_trade_id": "x"}, "bad_field", "heartbeat message"),
    ({"type": "error"}, "bad_field", "`message`"),
    ({**MATCH, "price": "4OO"}, "bad_decimal", "price '4OO' is not a decimal"),
    ({**MATCH, "size": "sNaN"}, "bad_decimal", "size 'sNaN' is not a finite"),
    ({**MATCH, "price": "0.00"}, "not_positive", "price '0.00' is not positive"),
    ({**MATCH, "size": "-1"}, "not_positive", "size '-1' is not positive"),
    ({**MATCH, "time": "2014-11-07T08:19:27.028459"}, "bad_time", "offset"),
    ({**MATCH, "time": "2014-11-07 08:19:27Z"}, "bad_time", "RFC 3339"),
    ({**MATCH, "time": "2014-02-30T08:19:27Z"}, "bad_time", "no such date"),
    ({**MATCH, "time": "2014-11-07T24:00:00Z"}, "bad_time", "no such time"),
    ({**MATCH, "time": "2016-12-31T23:59:60Z"}, "bad_time", "no such time"),
    ({**MATCH, "time": "2014-11-07T08:19:27.0284591234Z"}, "bad_time", "RFC 3339"),
    ({**MATCH, "time": "1969-12-31T23:59:59Z"}, "bad_time", "between 1970"),
    ({**MATCH, "time": "2014-11-07T08:19:27+25:00"}, "bad_time", "no such offset"),
    ({**MATCH, "product_id": "ETH-USD"}, "unknown_symbol", "'ETH-USD'"),
]


@pytest.mark.parametrize(("message", "reason", "detail"), BAD_FRAMES)
def test_malformed_frames_are_rejected_with_the_field_and_reason(
    message: dict[str, object] | str | bytes, reason: str, detail: str
) -> None:
    frame = json.dumps(message) if isinstance(message, dict) else message
    parsed = CoinbaseExchange(["BTC-USD"]).parse(frame, RECV)
    assert (parsed.ticks, parsed.error, parsed.alive) == ([], None, False)
    (bad,) = parsed.bad
    assert bad.reason == reason
    assert detail in bad.detail
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    assert bad.payload == text[:MAX_BAD_PAYLOAD]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(overrides=st.dictionaries(st.sampled_from(sorted(MATCH)), _json, max_size=4))
def test_any_mutation_of_a_match_gives_a_tick_or_a_reason_never_an_exception(
    overrides: dict[str, object],
) -> None:
    parsed = parse({**MATCH, **overrides})
    assert len(parsed.ticks) + len(parsed.bad) == 1 or parsed.alive or parsed.error
    assert all(bad.reason and bad.detail for bad in parsed.bad)


@given(frame=st.one_of(st.text(max_size=200), st.binary(max_size=200), _json.map(json.dumps)))
def test_arbitrary_frames_never_raise(frame: str | bytes) -> None:
    assert not CoinbaseExchange(["BTC-USD"]).parse(frame, RECV).ticks


# -- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2014-11-07T08:19:27.028459Z", T_MATCH),
        ("2014-11-07T08:19:27.028459123Z", T_MATCH + 123),
        ("2014-11-07t08:19:27.5z", T_MATCH - 28_459_000 + 500_000_000),
        ("2014-11-07T08:19:27Z", T_MATCH - 28_459_000),
        ("2014-11-07T09:19:27.028459+01:00", T_MATCH),
        ("2014-11-07T07:49:27.028459-00:30", T_MATCH),
        ("1970-01-01T00:00:00.000000001Z", 1),
    ],
)
def test_rfc3339_times_are_read_exactly_to_the_nanosecond(text: str, expected: int) -> None:
    assert rfc3339_to_ns(text) == expected


@given(ns=st.integers(min_value=1, max_value=2**63 - 1))
def test_coinbase_time_text_reads_back_to_the_same_nanosecond(ns: int) -> None:
    assert rfc3339_to_ns(coinbase_time(ns)) == ns


@given(
    ns=st.integers(min_value=10**12, max_value=2**63 - 10**14),
    offset_minutes=st.integers(-1439, 1439),
)
def test_the_fast_zulu_form_and_the_offset_forms_agree(ns: int, offset_minutes: int) -> None:
    """``...Z`` takes the cached fast path; the same instant with an offset the general one."""
    assert rfc3339_to_ns(coinbase_time(ns).replace("Z", "+00:00")) == ns
    local = coinbase_time(ns + offset_minutes * 60_000_000_000)[:-1]
    hours, minutes = divmod(abs(offset_minutes), 60)
    sign = "-" if offset_minutes < 0 else "+"
    assert rfc3339_to_ns(f"{local}{sign}{hours:02d}:{minutes:02d}") == ns


# -- real trades -----------------------------------------------------------------------------------


def test_real_trades_as_matches_parse_back_with_every_field_but_venue_and_count(
    shared_data: Path,
) -> None:
    """The Binance sample as BTC-USD matches: trade id, price, size, side and the time (in
    microseconds, exact) equal the file's; the instrument is Coinbase's, ``trades`` is 1 (a
    match is one trade) and ``ts_recv`` is the receipt time given to ``parse``."""
    expected = file_ticks(shared_data)
    frames = coinbase_frames(expected, heartbeat_every=40)
    protocol = CoinbaseExchange(["BTC-USD"])
    parsed = [protocol.parse(frame, RECV) for frame in frames]
    assert all(not p.bad and p.error is None and not p.snapshot for p in parsed)
    ticks = [tick for p in parsed for tick in p.ticks]
    assert ticks == [
        msgspec.structs.replace(tick, instrument="COINBASE:BTC-USD", trades=1, ts_recv=RECV)
        for tick in expected
    ]
    assert sum(p.alive for p in parsed) == len(frames) - len(expected) == 5000 // 40


def test_replayed_matches_have_contiguous_trade_ids_and_sequences_with_holes(
    shared_data: Path,
) -> None:
    messages = [json.loads(f) for f in coinbase_frames(file_ticks(shared_data), heartbeat_every=7)]
    sequences = [m["sequence"] for m in messages]
    assert all(a < b for a, b in itertools.pairwise(sequences))
    assert any(b - a > 1 for a, b in itertools.pairwise(sequences))
    ids = [m["trade_id"] for m in messages if m["type"] == "match"]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    beats = [m for m in messages if m["type"] == "heartbeat"]
    assert all(beat["last_trade_id"] == ids[7 * k + 6] for k, beat in enumerate(beats))


# -- the fake venue's script -----------------------------------------------------------------


def test_script_snapshot_is_the_last_match_of_the_latest_trade_sent(shared_data: Path) -> None:
    script = CoinbaseScript.from_file(shared_data, heartbeat_every=3)
    frames = script.frames()
    assert script.snapshot(0) == []
    protocol = CoinbaseExchange(["BTC-USD"])
    for sent in (1, 3, 4, 100, len(frames)):
        (snapshot,) = script.snapshot(sent)
        latest = next(f for f in reversed(frames[:sent]) if '"match"' in f)
        assert snapshot == as_last_match(latest)
        parsed = protocol.parse(snapshot, RECV)
        assert parsed.snapshot
        assert parsed.ticks == protocol.parse(latest, RECV).ticks


def test_script_acknowledges_the_protocols_subscribe() -> None:
    protocol = CoinbaseExchange()
    (request,) = protocol.subscribe(["BTC-USD"])
    (answer,) = CoinbaseScript([]).replies(request)
    assert protocol.parse(answer, RECV) == Parsed(alive=True)
    assert {c["name"] for c in json.loads(answer)["channels"]} == {"matches", "heartbeat"}


@pytest.mark.parametrize(
    "request_frame",
    [
        "{oops",
        '{"type": "unsubscribe", "channels": ["matches"]}',
        '{"type": "subscribe", "product_ids": ["ETH-USD"], "channels": ["matches"]}',
        '{"type": "subscribe", "product_ids": ["BTC-USD"], "channels": [5]}',
    ],
)
def test_script_refuses_bad_subscriptions_with_errors_the_protocol_reports(
    request_frame: str,
) -> None:
    (answer,) = CoinbaseScript([]).replies(request_frame)
    assert CoinbaseExchange().parse(answer, RECV).error is not None
