"""Binance spot protocol: URLs, SUBSCRIBE, both stream kinds and forms, real trades, bad frames."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.ticks import Side, Tick
from ingest.venues.base import MAX_BAD_PAYLOAD, Parsed
from ingest.venues.binance import BinanceSpot
from tests.ingest.venues.fakes.binance import (
    BINANCE_FILE,
    BinanceScript,
    binance_frames,
    file_ticks,
)

BASE = "wss://stream.binance.com:9443"
RECV = 1_767_225_700_000_000_000
AGG = {
    "e": "aggTrade",
    "E": 1672515782140,
    "s": "BTCUSDT",
    "a": 12345,
    "p": "87648.21000000",
    "q": "0.08185000",
    "f": 100,
    "l": 105,
    "T": 1672515782136,
    "m": True,
    "M": True,
}
TRADE = {
    "e": "trade",
    "E": 1672515782140,
    "s": "BTCUSDT",
    "t": 777,
    "p": "0.00100000",
    "q": "100.00000000",
    "T": 1672515782136,
    "m": False,
    "M": True,
}


def combined(event: dict[str, object], stream: str = "btcusdt@aggTrade") -> str:
    return json.dumps({"stream": stream, "data": event})


def only_tick(parsed: Parsed) -> Tick:
    assert (parsed.bad, parsed.error, parsed.snapshot) == ([], None, False)
    (tick,) = parsed.ticks
    return tick


# -- URLs and subscribe frames -------------------------------------------------------------


def test_combined_url_names_every_stream_in_lower_case_and_needs_no_subscribe_frame() -> None:
    protocol = BinanceSpot()
    url = protocol.connect_url(BASE + "/", ["BTCUSDT", "ethusdt"])
    assert url == f"{BASE}/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"
    assert protocol.subscribe(["BTCUSDT", "ethusdt"]) == []


def test_raw_url_carries_one_stream_and_refuses_several() -> None:
    protocol = BinanceSpot(stream="trade", combined=False)
    assert protocol.connect_url(BASE, ["BTCUSDT"]) == f"{BASE}/ws/btcusdt@trade"
    with pytest.raises(ValueError, match="one stream"):
        protocol.connect_url(BASE, ["BTCUSDT", "ETHUSDT"])


def test_subscribe_by_message_opens_the_bare_endpoint_and_numbers_each_request() -> None:
    protocol = BinanceSpot(subscribe_with="message")
    assert protocol.connect_url(BASE, ["BTCUSDT", "ETHUSDT"]) == f"{BASE}/stream"
    assert BinanceSpot(subscribe_with="message", combined=False).connect_url(BASE, ["X1"]) == (
        f"{BASE}/ws"
    )
    first, second = protocol.subscribe(["BTCUSDT", "ETHUSDT"]), protocol.subscribe(["BTCUSDT"])
    assert [json.loads(frame) for frame in first + second] == [
        {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "ethusdt@aggTrade"], "id": 1},
        {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 2},
    ]
    with pytest.raises(ValueError, match="at least one symbol"):
        protocol.subscribe([])


def test_microsecond_time_unit_is_asked_for_in_every_url_form() -> None:
    unit = "timeUnit=MICROSECOND"
    assert BinanceSpot(time_unit="us").connect_url(BASE, ["BTCUSDT"]).endswith(f"&{unit}")
    raw = BinanceSpot(time_unit="us", combined=False).connect_url(BASE, ["BTCUSDT"])
    assert raw == f"{BASE}/ws/btcusdt@aggTrade?{unit}"
    bare = BinanceSpot(time_unit="us", subscribe_with="message").connect_url(BASE, ["BTCUSDT"])
    assert bare == f"{BASE}/stream?{unit}"


@pytest.mark.parametrize(
    ("options", "symbols", "message"),
    [
        ({"stream": "depth"}, ["BTCUSDT"], "stream must be"),
        ({"time_unit": "ns"}, ["BTCUSDT"], "time_unit"),
        ({"subscribe_with": "rest"}, ["BTCUSDT"], "subscribe_with"),
        ({}, ["BTC/USDT"], "Binance symbol"),
        ({}, [""], "Binance symbol"),
        ({}, [], "at least one symbol"),
    ],
)
def test_bad_settings_and_symbols_are_refused_up_front(
    options: dict[str, str], symbols: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BinanceSpot(**options).connect_url(BASE, symbols)  # type: ignore[arg-type]


def test_a_url_that_is_not_a_websocket_url_is_refused() -> None:
    with pytest.raises(ValueError, match="ws://"):
        BinanceSpot().connect_url("https://example.invalid", ["BTCUSDT"])


def test_instrument_is_binance_and_the_upper_case_symbol() -> None:
    assert BinanceSpot().instrument("btcusdt") == "BINANCE:BTCUSDT"


# -- trade events ----------------------------------------------------------------------------


def test_agg_trade_becomes_one_tick_with_trade_count_and_millisecond_time() -> None:
    tick = only_tick(BinanceSpot(["BTCUSDT"]).parse(combined(AGG), RECV))
    assert tick == Tick(
        "BINANCE:BTCUSDT",
        12345,
        Decimal("87648.21"),
        Decimal("0.08185"),
        Side.SELL,
        1672515782136 * 1_000_000,
        RECV,
        6,
    )


def test_decimals_are_kept_exactly_as_sent() -> None:
    event = {**AGG, "p": "0.00000001", "q": "123456789.12345678"}
    tick = only_tick(BinanceSpot(["BTCUSDT"]).parse(combined(event), RECV))
    assert (str(tick.price), str(tick.size)) == ("1E-8", "123456789.12345678")
    assert tick.price == Decimal("0.00000001")
    trailing = only_tick(BinanceSpot(["BTCUSDT"]).parse(combined(AGG), RECV))
    assert (str(trailing.price), str(trailing.size)) == ("87648.21000000", "0.08185000")


@pytest.mark.parametrize(("buyer_is_maker", "aggressor"), [(True, Side.SELL), (False, Side.BUY)])
def test_buyer_is_maker_means_the_aggressor_sold(buyer_is_maker: bool, aggressor: Side) -> None:
    frame = combined({**AGG, "m": buyer_is_maker})
    assert only_tick(BinanceSpot(["BTCUSDT"]).parse(frame, RECV)).side is aggressor


def test_trade_stream_uses_the_trade_id_and_counts_one_trade() -> None:
    protocol = BinanceSpot(["BTCUSDT"], stream="trade")
    tick = only_tick(protocol.parse(combined(TRADE, "btcusdt@trade"), RECV))
    assert (tick.trade_id, tick.trades, tick.side) == (777, 1, Side.BUY)
    assert (tick.price, tick.size) == (Decimal("0.001"), Decimal(100))


def test_raw_stream_frames_are_read_unwrapped_and_wrapped_alike() -> None:
    raw = BinanceSpot(["BTCUSDT"], combined=False)
    wrapped = BinanceSpot(["BTCUSDT"])
    expected = only_tick(wrapped.parse(combined(AGG), RECV))
    assert only_tick(raw.parse(json.dumps(AGG), RECV)) == expected
    # a form the connection did not ask for is still read (the slow way)
    assert only_tick(raw.parse(combined(AGG), RECV)) == expected
    assert only_tick(wrapped.parse(json.dumps(AGG).encode(), RECV)) == expected


def test_microsecond_trade_time_is_read_by_magnitude_exactly() -> None:
    frame = combined({**AGG, "T": 1767225600039409})
    tick = only_tick(BinanceSpot(["BTCUSDT"]).parse(frame, RECV))
    assert tick.ts_event == 1767225600039409000


def test_symbols_are_known_from_construction_connect_or_subscribe() -> None:
    protocol = BinanceSpot()
    assert protocol.parse(combined(AGG), RECV).bad[0].reason == "unknown_symbol"
    protocol.connect_url(BASE, ["btcusdt"])
    assert only_tick(protocol.parse(combined(AGG), RECV)).instrument == "BINANCE:BTCUSDT"
    other = BinanceSpot(subscribe_with="message")
    other.subscribe(["BTCUSDT"])
    assert other.parse(combined(AGG), RECV).ticks


# -- answers, errors, other events -------------------------------------------------------------


def test_subscribe_answer_is_a_sign_of_life() -> None:
    parsed = BinanceSpot(["BTCUSDT"]).parse('{"result":null,"id":1}', RECV)
    assert parsed == Parsed(alive=True)


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        ('{"code": 2, "msg": "Invalid request: too many parameters", "id": 4}', "error 2"),
        ('{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1"}', "Invalid JSON"),
        ('{"error": {"code": 1, "msg": "Invalid value type"}, "id": 9}', "Invalid value type"),
    ],
)
def test_error_answers_become_the_venue_error(frame: str, text: str) -> None:
    parsed = BinanceSpot(["BTCUSDT"]).parse(frame, RECV)
    assert parsed.error is not None
    assert text in parsed.error
    assert (parsed.ticks, parsed.bad) == ([], [])


@pytest.mark.parametrize(
    "frame",
    [
        combined(TRADE, "btcusdt@trade"),  # a trade event on an aggTrade connection
        combined({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2}, "btcusdt@depth"),
        json.dumps({"e": "24hrTicker", "s": "BTCUSDT"}),
        '{"result":["btcusdt@aggTrade"],"id":3}',
    ],
)
def test_other_events_and_answers_are_ignored_as_signs_of_life(frame: str) -> None:
    assert BinanceSpot(["BTCUSDT"]).parse(frame, RECV) == Parsed(alive=True)


# -- malformed frames ----------------------------------------------------------------------------


BAD_FRAMES = [
    ("not json at all", "not_json", "not JSON"),
    (b"\xff\xfe{", "not_json", "not JSON"),
    ("", "not_json", "not JSON"),
    ("0\x00", "not_json", "not JSON"),
    ('{"result": null} x', "not_json", "not JSON"),
    ("[1, 2]", "unknown_shape", "an array"),
    ('"aggTrade"', "unknown_shape", "a string"),
    ('{"foo": 1}', "unknown_shape", "'e'"),
    ('{"stream": "btcusdt@aggTrade", "data": [1]}', "unknown_shape", "'data'"),
    ('{"stream": 5, "data": {}}', "unknown_shape", "'stream'"),
    (combined({k: v for k, v in AGG.items() if k != "a"}), "bad_field", "`a`"),
    (combined({**AGG, "a": -1}), "bad_field", "data.a"),
    (combined({**AGG, "a": 1.5}), "bad_field", "data.a"),
    (combined({**AGG, "a": "12345"}), "bad_field", "data.a"),
    (combined({**AGG, "m": "true"}), "bad_field", "data.m"),
    (combined({**AGG, "s": None}), "bad_field", "data.s"),
    (combined({**AGG, "p": 87648.21}), "bad_field", "data.p"),
    (combined({**AGG, "T": "1672515782136"}), "bad_field", "data.T"),
    (combined({**AGG, "f": 106}), "bad_field", "f (first trade id) 106 is after l 105"),
    (combined(AGG, "ethusdt@aggTrade"), "bad_field", "stream 'ethusdt@aggTrade'"),
    (combined({**AGG, "p": "abc"}), "bad_decimal", "p (price) 'abc' is not a decimal"),
    (combined({**AGG, "p": "NaN"}), "bad_decimal", "p (price) 'NaN' is not a finite"),
    (combined({**AGG, "q": "Infinity"}), "bad_decimal", "q (quantity)"),
    (combined({**AGG, "p": "0.0000000000000000001"}), "bad_decimal", "more than 18 places"),
    (combined({**AGG, "p": "1e-19"}), "bad_decimal", "more than 18 places"),
    (combined({**AGG, "q": "1000000000000000000"}), "bad_decimal", "not below 10**18"),
    (combined({**AGG, "p": "0"}), "not_positive", "p (price) '0' is not positive"),
    (combined({**AGG, "q": "-0.5"}), "not_positive", "q (quantity) '-0.5' is not positive"),
    (combined({**AGG, "T": 0}), "bad_time", "T (trade time) 0"),
    (combined({**AGG, "T": -5}), "bad_time", "T (trade time) -5"),
    (combined({**AGG, "T": 10**16}), "bad_time", "milliseconds or microseconds"),
    (combined({**AGG, "s": "ETHUSDT"}, "ethusdt@aggTrade"), "unknown_symbol", "'ETHUSDT'"),
]


@pytest.mark.parametrize(("frame", "reason", "detail"), BAD_FRAMES)
def test_malformed_frames_are_rejected_with_the_field_and_reason(
    frame: str | bytes, reason: str, detail: str
) -> None:
    parsed = BinanceSpot(["BTCUSDT"]).parse(frame, RECV)
    assert (parsed.ticks, parsed.error, parsed.alive) == ([], None, False)
    (bad,) = parsed.bad
    assert bad.reason == reason
    assert detail in bad.detail
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    assert bad.payload == text[:MAX_BAD_PAYLOAD]


def test_the_kept_payload_of_a_huge_bad_frame_is_cut() -> None:
    frame = combined({**AGG, "p": "x" * 10_000})
    (bad,) = BinanceSpot(["BTCUSDT"]).parse(frame, RECV).bad
    assert bad.payload == frame[:MAX_BAD_PAYLOAD]


def test_a_bad_receipt_time_is_a_bad_tick_not_an_exception() -> None:
    (bad,) = BinanceSpot(["BTCUSDT"]).parse(combined(AGG), 0).bad
    assert bad.reason == "bad_tick"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)
_field_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.floats(), _json
)


@given(overrides=st.dictionaries(st.sampled_from(sorted(AGG)), _field_values, max_size=4))
def test_any_mutation_of_a_trade_gives_a_tick_or_a_reason_never_an_exception(
    overrides: dict[str, object],
) -> None:
    frame = combined({**AGG, **overrides})
    parsed = BinanceSpot(["BTCUSDT"]).parse(frame, RECV)
    assert len(parsed.ticks) + len(parsed.bad) == 1 or parsed.alive
    assert all(bad.reason and bad.detail for bad in parsed.bad)


@given(frame=st.one_of(st.text(max_size=200), st.binary(max_size=200), _json.map(json.dumps)))
def test_arbitrary_frames_never_raise(frame: str | bytes) -> None:
    parsed = BinanceSpot(["BTCUSDT"]).parse(frame, RECV)
    assert not parsed.ticks


# -- real trades ------------------------------------------------------------------------------


def test_real_trades_in_microseconds_parse_back_to_the_file_ticks_exactly(
    shared_data: Path,
) -> None:
    """Every field but ``ts_recv`` (the receipt time given to ``parse``) equals the file's."""
    expected = file_ticks(shared_data)
    frames = binance_frames(expected, time_unit="us")
    protocol = BinanceSpot(["BTCUSDT"], time_unit="us")
    parsed = [protocol.parse(frame, RECV) for frame in frames]
    assert all(not p.bad and p.error is None for p in parsed)
    ticks = [tick for p in parsed for tick in p.ticks]
    assert ticks == [msgspec.structs.replace(tick, ts_recv=RECV) for tick in expected]
    assert len(ticks) == 5000
    assert [t.trade_id for t in ticks] == list(range(ticks[0].trade_id, ticks[0].trade_id + 5000))


def test_real_trades_in_milliseconds_differ_only_by_time_floored_to_the_millisecond(
    shared_data: Path,
) -> None:
    """Binance's default ``T`` is milliseconds; the file's microseconds are floored to it."""
    expected = file_ticks(shared_data)
    frames = binance_frames(expected, combined=False)
    protocol = BinanceSpot(["BTCUSDT"], combined=False)
    ticks = [tick for frame in frames for tick in protocol.parse(frame, RECV).ticks]
    assert ticks == [
        msgspec.structs.replace(tick, ts_event=tick.ts_event // 1_000_000 * 1_000_000, ts_recv=RECV)
        for tick in expected
    ]
    assert any(tick.ts_event % 1_000_000 for tick in expected)  # the floor was not a no-op


def test_real_trades_as_trade_events_keep_ids_prices_sizes_and_sides(shared_data: Path) -> None:
    expected = file_ticks(shared_data)[:500]
    frames = binance_frames(expected, stream="trade", time_unit="us")
    protocol = BinanceSpot(["BTCUSDT"], stream="trade")
    ticks = [tick for frame in frames for tick in protocol.parse(frame, RECV).ticks]
    assert ticks == [msgspec.structs.replace(t, ts_recv=RECV, trades=1) for t in expected]


def test_file_frames_carry_the_real_first_and_last_raw_trade_ids(shared_data: Path) -> None:
    fields = [line.split(",") for line in (shared_data / BINANCE_FILE).read_text().splitlines()]
    frames = binance_frames(file_ticks(shared_data))
    for row, frame in zip(fields, frames, strict=True):
        data = json.loads(frame)["data"]
        assert (data["a"], data["p"], data["q"], data["f"], data["l"]) == (
            int(row[0]),
            row[1],
            row[2],
            int(row[3]),
            int(row[4]),
        )
        assert data["T"] == int(row[5]) // 1000
        assert data["m"] is (row[6] == "True")


# -- the fake venue's script ------------------------------------------------------------------


def test_script_answers_the_protocols_subscribe_with_success() -> None:
    protocol = BinanceSpot(subscribe_with="message")
    script = BinanceScript([])
    (request,) = protocol.subscribe(["BTCUSDT"])
    (answer,) = script.replies(request)
    assert protocol.parse(answer, RECV) == Parsed(alive=True)


@pytest.mark.parametrize(
    "request_frame",
    ["{not json", '{"method": "SUBSCRIBE", "params": ["x"]}', '{"method": "PING", "id": 1}'],
)
def test_script_answers_bad_requests_with_errors_the_protocol_reports(request_frame: str) -> None:
    (answer,) = BinanceScript([]).replies(request_frame)
    assert BinanceSpot().parse(answer, RECV).error is not None


def test_script_replays_the_file_without_a_snapshot(shared_data: Path) -> None:
    script = BinanceScript.from_file(shared_data)
    frames = script.frames()
    assert len(frames) == 5000
    assert script.snapshot(0) == script.snapshot(2500) == []
    protocol = BinanceSpot(["BTCUSDT"])
    assert all(len(protocol.parse(frame, RECV).ticks) == 1 for frame in frames)
