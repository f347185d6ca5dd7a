"""Field checks shared by the venue protocols: exact positive decimals and their cache."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.venues.fields import DecimalCache, FieldError, positive_decimal


@pytest.mark.parametrize(
    "text",
    ["87648.21000000", "0.000000000000000001", "999999999999999999", "1E-18", "5."],
)
def test_values_a_tick_batch_can_hold_are_accepted_exactly(text: str) -> None:
    value = positive_decimal(text, "price")
    assert value == Decimal(text)
    assert str(value) == str(Decimal(text))  # trailing zeros and all


@pytest.mark.parametrize(
    ("text", "reason", "message"),
    [
        ("0.0000000000000000001", "bad_decimal", "more than 18 places"),
        ("1.0000000000000000001", "bad_decimal", "more than 18 places"),
        ("1E-19", "bad_decimal", "more than 18 places"),
        ("1000000000000000000", "bad_decimal", "not below 10**18"),
        ("1E+18", "bad_decimal", "not below 10**18"),
        ("-0", "not_positive", "not positive"),
        ("Infinity", "bad_decimal", "not a finite number"),
        ("12,5", "bad_decimal", "not a decimal number"),
    ],
)
def test_values_a_tick_batch_cannot_hold_are_refused_by_name(
    text: str, reason: str, message: str
) -> None:
    with pytest.raises(FieldError) as caught:
        positive_decimal(text, "q (quantity)")
    assert caught.value.reason == reason
    assert caught.value.detail.startswith(f"q (quantity) {text!r}")
    assert message in caught.value.detail


def test_places_are_counted_exactly_when_long_text_has_trailing_zeros() -> None:
    assert positive_decimal("1.5000000000000000000000", "price") == Decimal("1.5")


def test_the_cache_gives_the_checked_value_and_keeps_no_refused_text() -> None:
    cache = DecimalCache(size=3)
    assert cache("1.50", "price") is cache("1.50", "size")
    assert str(cache("1.50", "price")) == "1.50"
    for _ in range(2):
        with pytest.raises(FieldError, match="size '0' is not positive"):
            cache("0", "size")
    assert len(cache) == 1


def test_a_full_cache_starts_over_and_stays_bounded() -> None:
    cache = DecimalCache(size=3)
    values = [cache(f"{n}.5", "price") for n in range(1, 8)]
    assert values == [Decimal(f"{n}.5") for n in range(1, 8)]
    assert 1 <= len(cache) <= 3
    with pytest.raises(ValueError, match="at least one"):
        DecimalCache(size=0)
