"""Kraken v2 protocol: subscribe frames, every message kind, exact numbers, refusals by field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from core.ticks import Side, Tick
from ingest.files.reader import read_ticks
from ingest.venues.base import Parsed
from ingest.venues.kraken import KrakenSpot, normalise_symbol
from tests.ingest.venues.fakes.kraken import KRAKEN_TRADES, KrakenScript

RECV = 1_800_000_000_123_456_789
SYMBOL = "BTC/USD"


def trade(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "symbol": SYMBOL,
        "side": "buy",
        "price": 0.1,
        "qty": 3,
        "ord_type": "limit",
        "trade_id": 4665846,
        "timestamp": "2023-09-25T07:48:36.925533Z",
    }
    fields.update(changes)
    return fields


def message(*trades: dict[str, object], kind: str = "update") -> str:
    return json.dumps({"channel": "trade", "type": kind, "data": list(trades)})


def parse(frame: str, symbols: tuple[str, ...] = (SYMBOL,)) -> Parsed:
    return KrakenSpot(symbols).parse(frame, RECV)


def test_the_subscription_asks_for_the_trade_channel_of_every_symbol_with_a_snapshot() -> None:
    protocol = KrakenSpot()
    (frame,) = protocol.subscribe(["btc/usd", "ETH/EUR"])
    assert json.loads(frame) == {
        "method": "subscribe",
        "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/EUR"], "snapshot": True},
        "req_id": 1,
    }
    assert json.loads(protocol.ping()) == {"method": "ping", "req_id": 2}
    assert protocol.connect_url("wss://ws.kraken.com/v2", ["BTC/USD"]) == "wss://ws.kraken.com/v2"
    assert protocol.instrument("btc/usd") == "KRAKEN:BTC/USD"


@pytest.mark.parametrize("symbol", ["BTCUSD", "BTC-USD", "BTC/", "/USD", "BTC/USD/EUR", ""])
def test_a_symbol_that_is_not_base_slash_quote_is_refused(symbol: str) -> None:
    with pytest.raises(ValueError, match="BTC/USD"):
        normalise_symbol(symbol)
    with pytest.raises(ValueError, match="BTC/USD"):
        KrakenSpot().subscribe([symbol])


def test_an_update_becomes_ticks_with_exact_numbers_and_nanosecond_times() -> None:
    parsed = parse(
        message(
            trade(),
            trade(
                side="sell",
                price=105433.60000,
                qty=1e-8,
                trade_id=4665847,
                timestamp="2023-09-25T07:48:36.925533123Z",
            ),
        )
    )
    assert parsed.bad == []
    assert not parsed.snapshot
    assert parsed.ticks == [
        Tick("KRAKEN:BTC/USD", 4665846, Decimal("0.1"), Decimal(3), Side.BUY,
             1695628116925533000, RECV),
        Tick("KRAKEN:BTC/USD", 4665847, Decimal("105433.6"), Decimal("1E-8"), Side.SELL,
             1695628116925533123, RECV),
    ]  # fmt: skip


def test_the_decimal_digits_are_those_of_the_json_text_not_of_a_float() -> None:
    frame = message(trade(price="__P__", qty="__Q__"))
    frame = frame.replace('"__P__"', "105433.60000").replace('"__Q__"', "0.123456789012345678")
    (tick,) = parse(frame).ticks
    assert str(tick.price) == "105433.60000"
    assert tick.size == Decimal("0.123456789012345678")  # a float would give ...4568


def test_a_snapshot_is_flagged_so_that_its_repeats_are_expected() -> None:
    parsed = parse(message(trade(), kind="snapshot"))
    assert parsed.snapshot
    assert len(parsed.ticks) == 1


def test_heartbeat_status_acknowledgement_and_pong_are_signs_of_life() -> None:
    frames = [
        '{"channel":"heartbeat"}',
        '{"channel":"status","type":"update","data":[{"api_version":"v2",'
        '"connection_id":13834774380200032777,"system":"online","version":"2.0.0"}]}',
        '{"method":"subscribe","result":{"channel":"trade","snapshot":true,"symbol":"BTC/USD"},'
        '"success":true,"time_in":"2023-09-25T09:04:31.742599Z",'
        '"time_out":"2023-09-25T09:04:31.742648Z","req_id":1}',
        '{"method":"pong","req_id":2,"time_in":"2023-09-24T14:10:23.799685Z",'
        '"time_out":"2023-09-24T14:10:23.799703Z"}',
    ]
    for frame in frames:
        assert parse(frame) == Parsed(alive=True), frame


def test_a_refused_subscription_or_a_venue_error_is_an_error_for_the_runtime() -> None:
    refused = parse(
        '{"error":"Currency pair not supported XYZ/USD","method":"subscribe","success":false,'
        '"symbol":"XYZ/USD","req_id":1}'
    )
    assert (
        refused.error == "kraken refused to subscribe XYZ/USD: Currency pair not supported XYZ/USD"
    )
    assert refused.ticks == []
    assert parse('{"error":"Exceeded msg rate","success":false}').error == (
        "kraken reported: Exceeded msg rate"
    )


@pytest.mark.parametrize(
    ("frame", "reason", "names"),
    [
        ('{"channel":"trade","type":"update","data":[{"sym', "not_json", "not JSON"),
        ("[1, 2]", "unknown_shape", "not a Kraken v2 message"),
        ('{"channel":"ticker","type":"update","data":[]}', "unknown_shape", "'ticker'"),
        ('{"method":"add_order","success":true}', "unknown_shape", "'add_order'"),
        ('{"hello":"world"}', "unknown_shape", "no 'channel' or 'method'"),
        ('{"channel":"trade","type":"delta","data":[]}', "bad_field", "$.type"),
        ('{"channel":"trade","type":"update","data":{}}', "bad_field", "$.data"),
        ('{"channel":"status","type":"update","data":[{}]}', "bad_field", "system"),
        ('{"method":"subscribe","success":"yes"}', "bad_field", "$.success"),
        (message(trade(price="abc")), "bad_field", "$.data[0].price"),
        (message(trade(side="long")), "bad_field", "$.data[0].side"),
        (message({k: v for k, v in trade().items() if k != "trade_id"}), "bad_field", "trade_id"),
        (message(trade(price=-5)), "not_positive", "data[0].price"),
        (message(trade(qty=0)), "not_positive", "data[0].qty"),
        (message(trade(qty=1e-19)), "bad_decimal", "data[0].qty"),
        (message(trade(price=1e18)), "bad_decimal", "data[0].price"),
        (message(trade(timestamp="2023-09-25 07:48:36")), "bad_time", "data[0].timestamp"),
        (message(trade(timestamp="2023-02-30T07:48:36Z")), "bad_time", "data[0].timestamp"),
        (message(trade(symbol="ETH/USD")), "unknown_symbol", "data[0].symbol 'ETH/USD'"),
        (message(trade(trade_id=-1)), "bad_tick", "trade_id"),
    ],
)
def test_a_malformed_frame_is_refused_with_a_reason_naming_the_field(
    frame: str, reason: str, names: str
) -> None:
    parsed = parse(frame)
    assert parsed.ticks == []
    (bad,) = parsed.bad
    assert bad.reason == reason
    assert names in bad.detail
    assert bad.payload == frame


def test_a_bad_trade_is_refused_alone_and_the_good_ones_beside_it_count() -> None:
    parsed = parse(message(trade(trade_id=1), trade(trade_id=2, qty="x"), trade(trade_id=3)))
    assert [tick.trade_id for tick in parsed.ticks] == [1, 3]
    (bad,) = parsed.bad
    assert "$.data[1].qty" in bad.detail


def test_the_fake_venue_frames_read_back_as_exactly_the_file_ticks(shared_data: Path) -> None:
    """The Kraken script's v2 messages of the real trades give the ticks the REST file reader
    gives (venue time to the nanosecond, exact decimals), apart from the receipt time."""
    script = KrakenScript.from_file(shared_data)
    protocol = KrakenSpot(["BTC/USDT"])
    ticks = [tick for frame in script.frames() for tick in protocol.parse(frame, RECV).ticks]
    (batch,) = read_ticks(shared_data / KRAKEN_TRADES, instrument="KRAKEN:BTC/USDT")
    expected = [msgspec.structs.replace(tick, ts_recv=RECV) for tick in batch.ticks()]
    assert ticks == expected
