"""Wire codecs: exact round trips, and a CodecError naming the problem for any bad message."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.candles import Candle, CandleStatus
from core.codecs import (
    MAX_REJECTED_DETAIL,
    MAX_REJECTED_PAYLOAD,
    CodecError,
    RejectCode,
    RejectedMessage,
    candle_key,
    decode_candle,
    decode_rejected,
    decode_tick_batch,
    decode_ticks_message,
    encode_candle,
    encode_feed_gap,
    encode_rejected,
    encode_tick_batch,
    instrument_key,
)
from core.engine import CandleEngine, EngineConfig
from core.gaps import FeedGap, GapReason
from core.intervals import Interval
from core.rejects import RejectedTick, RejectReason
from core.ticks import TickBatch
from tests.core.factories import T0, tick

INT64_MAX = 2**63 - 1
instruments = st.from_regex(r"[A-Z0-9_]{1,8}:[A-Z0-9_./-]{1,12}", fullmatch=True)


@st.composite
def tick_batches(draw: st.DrawFn) -> TickBatch:
    n = draw(st.integers(0, 40))

    def column(low: int, high: int, dtype: type[np.integer] = np.int64) -> np.ndarray:
        values = draw(st.lists(st.integers(low, high), min_size=n, max_size=n))
        return np.array(values, dtype=dtype)

    return TickBatch(
        instrument=draw(instruments),
        price_scale=draw(st.integers(0, 18)),
        size_scale=draw(st.integers(0, 18)),
        trade_id=column(0, INT64_MAX),
        price=column(1, INT64_MAX),
        size=column(1, INT64_MAX),
        side=column(-1, 1, np.int8),
        ts_event=column(1, INT64_MAX),
        ts_recv=column(1, INT64_MAX),
        trades=column(1, INT64_MAX),
    )


@st.composite
def candles(draw: st.DrawFn) -> Candle:
    interval = Interval.parse(draw(st.sampled_from(["1s", "1m", "5m", "1h", "4h", "1d", "90s"])))
    big = st.integers(1, 2**100)
    low = draw(big)
    high = low + draw(st.integers(0, 2**70))
    trades = draw(st.integers(0, 2**70))
    volume = 0 if trades == 0 else draw(big)
    trade_ids = st.none() if trades == 0 else st.integers(0, INT64_MAX)
    return Candle(
        instrument=draw(instruments),
        interval=interval,
        open_time=draw(st.integers(0, INT64_MAX // interval.ns)) * interval.ns,
        price_scale=draw(st.integers(0, 18)),
        size_scale=draw(st.integers(0, 18)),
        open_raw=draw(st.integers(low, high)),
        high_raw=high,
        low_raw=low,
        close_raw=draw(st.integers(low, high)),
        volume_raw=volume,
        quote_volume_raw=draw(st.integers(0, 2**140)),
        taker_buy_volume_raw=draw(st.integers(0, volume)),
        trades=trades,
        first_trade_id=draw(trade_ids),
        last_trade_id=draw(trade_ids),
        revision=draw(st.integers(0, 1000)),
        status=draw(st.sampled_from(CandleStatus)),
        gap=draw(st.booleans()),
    )


@st.composite
def feed_gaps(draw: st.DrawFn) -> FeedGap:
    start = draw(st.integers(1, INT64_MAX - 1))
    return FeedGap(
        instrument=draw(instruments),
        start_ns=start,
        end_ns=draw(st.integers(start + 1, INT64_MAX)),
        reason=draw(st.sampled_from(GapReason)),
        detail=draw(st.text(max_size=40)),
        ts_recv=draw(st.integers(0, INT64_MAX)),
    )


def assert_same_batch(got: TickBatch, want: TickBatch) -> None:
    assert (got.instrument, got.price_scale, got.size_scale) == (
        want.instrument,
        want.price_scale,
        want.size_scale,
    )
    for name in ("trade_id", "price", "size", "side", "ts_event", "ts_recv", "trades"):
        column, expected = getattr(got, name), getattr(want, name)
        assert column.dtype == expected.dtype, name
        assert np.array_equal(column, expected), name


def sample_batch() -> TickBatch:
    return TickBatch.from_ticks([tick(1, 0.5, "100.25", "0.001"), tick(2, 1.0, "99", "3")])


def sample_candle() -> Candle:
    engine = CandleEngine(EngineConfig())
    return engine.feed(sample_batch()).candles[0]


def sample_gap() -> FeedGap:
    return FeedGap(
        instrument="TEST:ABC",
        start_ns=T0,
        end_ns=T0 + 5_000_000_000,
        reason=GapReason.DISCONNECTED,
        detail="connection lost for 5s",
        ts_recv=T0 + 7_000_000_000,
    )


def wire(data: bytes) -> dict[str, object]:
    decoded = msgspec.msgpack.decode(data)
    assert isinstance(decoded, dict)
    return decoded


def rewire(data: bytes, **changes: object) -> bytes:
    """``data`` with some fields of its envelope changed (``None`` deletes one)."""
    fields = wire(data)
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return msgspec.msgpack.encode(fields)


# -- round trips ------------------------------------------------------------------------------


@given(tick_batches())
def test_a_tick_batch_survives_the_wire_exactly(batch: TickBatch) -> None:
    assert_same_batch(decode_tick_batch(encode_tick_batch(batch)), batch)


def test_tick_batch_columns_travel_as_raw_little_endian_bytes() -> None:
    batch = sample_batch()
    fields = wire(encode_tick_batch(batch))
    assert fields["v"] == 1
    assert fields["rows"] == 2
    assert fields["price"] == np.array([10025, 9900], "<i8").tobytes()
    assert fields["side"] == b"\x01\x01"


def test_a_decoded_batch_feeds_the_engine_like_the_original() -> None:
    batches = [sample_batch(), TickBatch.from_ticks([tick(3, 61, "101", "2")])]
    direct, via_wire = CandleEngine(EngineConfig()), CandleEngine(EngineConfig())
    for batch in batches:
        want = direct.feed(batch).candles
        assert via_wire.feed(decode_tick_batch(encode_tick_batch(batch))).candles == want


def test_an_empty_batch_survives_the_wire() -> None:
    empty = TickBatch.empty("TEST:ABC", 2, 3)
    assert_same_batch(decode_tick_batch(encode_tick_batch(empty)), empty)


@given(candles())
def test_a_candle_survives_the_wire_exactly(candle: Candle) -> None:
    assert decode_candle(encode_candle(candle)) == candle


def test_integers_past_64_bits_travel_as_decimal_text() -> None:
    candle = msgspec.structs.replace(sample_candle(), quote_volume_raw=2**64 + 1)
    fields = wire(encode_candle(candle))
    assert fields["quote_volume"] == str(2**64 + 1)
    assert isinstance(fields["volume"], int)
    assert decode_candle(encode_candle(candle)).quote_volume_raw == 2**64 + 1


def test_a_candle_carries_its_gap_flag_only_when_set() -> None:
    flagged = msgspec.structs.replace(sample_candle(), gap=True)
    assert wire(encode_candle(flagged))["gap"] is True
    assert "gap" not in wire(encode_candle(sample_candle()))
    assert decode_candle(encode_candle(flagged)).gap is True


def test_a_candle_message_from_before_gaps_decodes_unflagged() -> None:
    older = rewire(encode_candle(sample_candle()), gap=None)
    assert decode_candle(older) == sample_candle()
    assert decode_candle(older).gap is False


@given(feed_gaps())
def test_a_feed_gap_survives_the_wire_exactly(gap: FeedGap) -> None:
    assert decode_ticks_message(encode_feed_gap(gap)) == gap


@given(tick_batches())
def test_md_ticks_messages_without_a_kind_are_tick_batches(batch: TickBatch) -> None:
    decoded = decode_ticks_message(encode_tick_batch(batch))
    assert isinstance(decoded, TickBatch)
    assert_same_batch(decoded, batch)


def test_a_feed_gap_is_a_versioned_map_told_apart_by_its_kind() -> None:
    fields = wire(encode_feed_gap(sample_gap()))
    assert list(fields)[:2] == ["v", "kind"]
    assert (fields["v"], fields["kind"], fields["reason"]) == (1, "gap", "disconnected")
    assert (fields["start_ns"], fields["end_ns"]) == (T0, T0 + 5_000_000_000)
    assert "kind" not in wire(encode_tick_batch(sample_batch()))


def test_a_feed_gap_without_its_optional_fields_decodes_with_defaults() -> None:
    bare = rewire(encode_feed_gap(sample_gap()), detail=None, ts_recv=None)
    assert decode_ticks_message(bare) == msgspec.structs.replace(sample_gap(), detail="", ts_recv=0)


def test_the_tick_batch_decoder_says_when_it_got_a_feed_gap() -> None:
    with pytest.raises(CodecError, match=r"^bad tick batch message: got a feed gap"):
        decode_tick_batch(encode_feed_gap(sample_gap()))


def test_keys_name_the_instrument_and_the_interval() -> None:
    candle = sample_candle()
    assert candle_key(candle) == f"TEST:ABC|{candle.interval.label}".encode()
    assert instrument_key("BINANCE:BTCUSDT") == b"BINANCE:BTCUSDT"


def test_an_engine_reject_survives_the_wire_with_its_tick() -> None:
    late = tick(7, 1.5, "100.125", "0.5")
    rejected = RejectedTick(late, RejectReason.LATE_BEYOND_HORIZON, "older than the horizon")
    message = RejectedMessage.of_rejected_tick(rejected)
    assert decode_rejected(encode_rejected(message)) == message
    assert message.reason == RejectCode.LATE_BEYOND_HORIZON
    assert (message.instrument, message.trade_id, message.key) == ("TEST:ABC", 7, b"TEST:ABC")


def test_a_bad_file_row_survives_the_wire_with_its_text() -> None:
    message = RejectedMessage(
        reason=RejectCode.BAD_ROW,
        detail="price: not a decimal number: 'abc'",
        source="ingest",
        instrument="BINANCE:BTCUSDT",
        payload=b"1,abc,0.1,1,1,1700000000000,true",
        origin="trades.csv:17",
    )
    assert decode_rejected(encode_rejected(message)) == message


def test_a_reject_escapes_the_control_characters_it_quotes_even_from_the_wire() -> None:
    built = RejectedMessage(
        reason="bad_row", detail="price '9\x0042.5'", source="ingest", origin="a\nb.csv:2"
    )
    assert (built.detail, built.origin) == (r"price '9\x0042.5'", r"a\x0ab.csv:2")
    older = msgspec.msgpack.encode(
        {"v": 1, "reason": "bad_row", "detail": "x\x00", "source": "ingest", "payload": b"\x00"}
    )  # a record of a producer that did not escape
    decoded = decode_rejected(older)
    assert (decoded.detail, decoded.payload) == (r"x\x00", b"\x00")  # the bytes stay as they were
    assert decode_rejected(encode_rejected(built)) == built


def test_a_reject_quoting_megabytes_is_cut_to_fit_a_bus_record_and_stays_cut_on_the_wire() -> None:
    huge = RejectedMessage(
        reason="bad_row",
        detail=f"price '{'9' * 3_000_000}x' is not a decimal number",
        source="ingest",
        payload=b"9" * 3_000_000,
        origin="x" * 5000,
    )
    assert len(huge.detail) == MAX_REJECTED_DETAIL
    assert huge.detail.endswith(
        "... [cut from 3,000,033 characters] (payload cut from 3000000 to 65536 bytes)"
    )
    assert huge.payload is not None
    assert len(huge.payload) == MAX_REJECTED_PAYLOAD
    assert huge.origin is not None
    assert len(huge.origin) == MAX_REJECTED_DETAIL
    wire = encode_rejected(huge)
    assert len(wire) < 100_000
    assert decode_rejected(wire) == huge


def test_an_undecodable_message_travels_as_is_and_cut_when_huge() -> None:
    error = CodecError("bad tick batch message: not valid MessagePack", "malformed")
    small = RejectedMessage.undecodable(b"\x8c\xa1v", error, "engine", "md.ticks/3/1234")
    assert decode_rejected(encode_rejected(small)) == small
    assert (small.payload, small.key, small.reason) == (b"\x8c\xa1v", b"", "undecodable")
    huge = RejectedMessage.undecodable(b"x" * (MAX_REJECTED_PAYLOAD + 1), error, "engine")
    assert huge.payload is not None
    assert len(huge.payload) == MAX_REJECTED_PAYLOAD
    assert "cut from" in huge.detail


def test_a_reject_from_a_newer_producer_keeps_its_unknown_reason_code() -> None:
    message = RejectedMessage(reason="venue_halted", detail="halted", source="ingest")
    assert decode_rejected(encode_rejected(message)).reason == "venue_halted"


def test_a_reject_refuses_a_tick_of_another_instrument() -> None:
    with pytest.raises(ValueError, match="must be the tick's"):
        RejectedMessage(reason="x", detail="", source="s", instrument="A:B", tick=tick(1, 1))
    with pytest.raises(ValueError, match="snake_case"):
        RejectedMessage(reason="Not A Code", detail="", source="s")


# -- errors -----------------------------------------------------------------------------------

DECODERS: list[Callable[[bytes], object]] = [
    decode_tick_batch,
    decode_ticks_message,
    decode_candle,
    decode_rejected,
]


@pytest.mark.parametrize("decode", DECODERS)
@given(data=st.binary(max_size=200))
def test_garbage_raises_codec_error_and_nothing_else(
    decode: Callable[[bytes], object], data: bytes
) -> None:
    with contextlib.suppress(CodecError):
        decode(data)


def sample_reject() -> RejectedMessage:
    return RejectedMessage.of_tick(tick(1, 1), "late_beyond_horizon", "late", "engine")


def encoded_batch() -> bytes:
    return encode_tick_batch(sample_batch())


def encoded_candle() -> bytes:
    return encode_candle(sample_candle())


def encoded_reject() -> bytes:
    return encode_rejected(sample_reject())


def encoded_gap() -> bytes:
    return encode_feed_gap(sample_gap())


SCHEMA = r"not the shape of this message \(.*\b"
"""Our phrase for a message of the wrong shape; the field it names follows somewhere after."""

CODECS: list[tuple[Callable[[], bytes], Callable[[bytes], object]]] = [
    (encoded_batch, decode_tick_batch),
    (encoded_batch, decode_ticks_message),
    (encoded_gap, decode_ticks_message),
    (encoded_candle, decode_candle),
    (encoded_reject, decode_rejected),
]


@given(st.data())
def test_damaged_messages_raise_codec_error_and_nothing_else(data: st.DataObject) -> None:
    encode, decode = data.draw(st.sampled_from(CODECS))
    message = bytearray(encode())
    for _ in range(data.draw(st.integers(1, 4))):
        message[data.draw(st.integers(0, len(message) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CodecError):
        decode(bytes(message))


@pytest.mark.parametrize(
    ("data", "reason", "problem"),
    [
        (b"", "malformed", "not valid MessagePack"),
        (encode_tick_batch(sample_batch())[:-5], "malformed", "not valid MessagePack"),
        (b"\xc1", "malformed", "not valid MessagePack"),
        (msgspec.msgpack.encode([1, 2, 3]), "schema", "not the shape of this message"),
        (msgspec.msgpack.encode({"v": 1}), "schema", "not the shape of this message"),
        (b"\x82\xa1v\x01\xaainstrument\xa2\xff\xfe", "malformed", "not valid MessagePack"),
        (b"\x81\xa1x" + b"\x91" * 100_000 + b"\xc0", "too_deep", "nested too deeply"),
    ],
)
def test_bytes_that_are_no_tick_batch_are_refused(data: bytes, reason: str, problem: str) -> None:
    """Our reason codes and phrases; msgspec's own wording may follow them in brackets."""
    with pytest.raises(CodecError, match=f"^bad tick batch message: {problem}") as refused:
        decode_tick_batch(data)
    assert refused.value.reason == reason


def test_input_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(CodecError, match="expected bytes, got str"):
        decode_tick_batch("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize(("encode", "decode"), CODECS)
def test_an_unknown_or_missing_version_is_refused(
    encode: Callable[[], bytes], decode: Callable[[bytes], object]
) -> None:
    good = encode()
    with pytest.raises(CodecError, match="unknown schema version 2 "):
        decode(rewire(good, v=2))
    with pytest.raises(CodecError, match="unknown schema version 2 "):
        decode(rewire(good, v=2, instrument=None, detail=None))  # a different shape too
    with pytest.raises(CodecError, match="no schema version field `v`"):
        decode(rewire(good, v=None))


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"price": b"\x01" * 15}, "column price has 15 bytes, but 2 rows of int64 need 16"),
        ({"side": b"\x01"}, "column side has 1 bytes, but 2 rows of int8 need 2"),
        ({"rows": 3}, "column trade_id has 16 bytes, but 3 rows of int64 need 24"),
        ({"rows": -1}, SCHEMA + "rows"),
        ({"price": np.array([100, -5], "<i8").tobytes()}, "row 1: price must be positive"),
        ({"size": np.array([0, 5], "<i8").tobytes()}, "row 0: size must be positive"),
        ({"side": b"\x01\x07"}, "row 1: side must be -1, 0 or 1"),
        ({"price_scale": 19}, "scales must be within 0..18"),
        ({"price_scale": "2"}, SCHEMA + "price_scale"),
        ({"instrument": "btc"}, "instrument must look like VENUE:SYMBOL"),
        ({"trades": "x"}, SCHEMA + "trades"),
    ],
)
def test_a_bad_tick_batch_is_refused_naming_the_problem(
    changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(CodecError, match=f"^bad tick batch message: {problem}"):
        decode_tick_batch(rewire(encoded_batch(), **changes))


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"low": 0, "open": 0, "close": 0}, "candle prices must be positive"),
        ({"high": 1}, "open and close must lie between low and high"),
        ({"quote_volume": "12x"}, "quote_volume is not an integer: '12x'"),
        ({"quote_volume": 1.5}, SCHEMA + "quote_volume"),
        ({"interval": "60s"}, "interval '60s' is not canonical"),
        ({"interval": "1w"}, "bad interval '1w'"),
        ({"open_time": T0 + 1}, "open_time must be aligned"),
        ({"status": "maybe"}, SCHEMA + "status"),
        ({"size_scale": -1}, "size_scale must be within 0..18"),
        ({"instrument": "nope"}, "instrument must look like VENUE:SYMBOL"),
        ({"trades": 0}, "a candle has volume exactly when it has trades"),
    ],
)
def test_a_bad_candle_is_refused_naming_the_problem(
    changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(CodecError, match=f"^bad candle message: .*{problem}"):
        decode_candle(rewire(encoded_candle(), **changes))


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"start_ns": 0}, "gap start_ns must be positive"),
        ({"end_ns": T0}, "gap end_ns must be after start_ns"),
        ({"ts_recv": -1}, "gap ts_recv must not be negative"),
        ({"instrument": "btc"}, "instrument must look like VENUE:SYMBOL"),
        ({"reason": "maybe"}, SCHEMA + "reason"),
        ({"start_ns": "1"}, SCHEMA + "start_ns"),
        ({"end_ns": None}, SCHEMA + "end_ns"),
        ({"detail": 7}, SCHEMA + "detail"),
    ],
)
def test_a_bad_feed_gap_is_refused_naming_the_field(
    changes: dict[str, object], problem: str
) -> None:
    with pytest.raises(CodecError, match=f"^bad feed gap message: {problem}"):
        decode_ticks_message(rewire(encoded_gap(), **changes))


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        (7, "kind must be a string, got 7"),
        ("trade", "unknown kind 'trade'"),
    ],
)
def test_an_md_ticks_message_of_an_unknown_kind_is_refused(kind: object, problem: str) -> None:
    for data in (rewire(encoded_gap(), kind=kind), rewire(encoded_batch(), kind=kind)):
        with pytest.raises(CodecError, match=rf"^bad md\.ticks message: {problem}"):
            decode_ticks_message(data)
        with pytest.raises(CodecError, match=r"^bad tick batch message: "):
            decode_tick_batch(data)


def test_a_reject_with_a_bad_tick_is_refused_naming_the_problem() -> None:
    good = encoded_reject()
    fields = wire(good)
    assert isinstance(fields["tick"], list)
    for index, value, problem in [
        (2, "-1", "price must be a positive number"),
        (3, "abc", "tick size: not a decimal number"),
        (4, 5, "5 is not a valid Side"),
    ]:
        bad_tick = list(fields["tick"])
        bad_tick[index] = value
        with pytest.raises(CodecError, match=f"^bad rejected message: {problem}"):
            decode_rejected(rewire(good, tick=bad_tick))
    assert Decimal(str(fields["tick"][2])) == Decimal(100)
