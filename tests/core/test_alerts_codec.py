"""``alerts.events``: a firing survives the wire exactly; anything else is refused with our
reason codes."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from core.alerts import MAX_FIRED_BYTES, AlertFired, Condition, decode_fired, encode_fired
from core.codecs import CodecError
from core.topic_codecs import codec_for
from core.topics import ALERTS_EVENTS

FIRED = AlertFired(
    fire_id="a1:2", alert_id="a1", account=7, instrument="KRAKEN:BTC/USD",
    condition=Condition.CROSS_UP, threshold=Decimal("87000.5"), price=Decimal("87000.50"),
    ts=1_767_225_600_123_456_789, trade_id=42, gap=True,
)  # fmt: skip


def test_a_firing_comes_back_equal_with_its_exact_prices() -> None:
    back = decode_fired(encode_fired(FIRED))
    assert back == FIRED
    assert str(back.price) == "87000.50"  # the scale is kept: no float on the way
    key, value = codec_for(ALERTS_EVENTS).record(FIRED)
    assert (key, decode_fired(value)) == (b"7", FIRED)


def _with(**changes: object) -> bytes:
    fields = {**msgspec.to_builtins(FIRED), **changes}
    return msgspec.msgpack.encode({k: v for k, v in fields.items() if v is not None})


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00" * (MAX_FIRED_BYTES + 1), "too_large"),
        (_with(v=2), "version"),
        (_with(v=None), "version"),  # no version at all
        (_with(fire_id="a1"), "schema"),  # a fire id names its arming
        (_with(condition="sideways"), "schema"),
    ],
)
def test_what_is_not_a_firing_is_refused_with_our_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError) as refused:
        decode_fired(data)
    assert refused.value.reason == reason
