"""Outside text made fit to keep: control characters escaped, once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import clipped, printable


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("9\x0042.5", r"9\x0042.5"),
        ("a\tb\r\nc", r"a\x09b\x0d\x0ac"),
        ("\x7f\x9b", r"\x7f\x9b"),
        ("bad \udc80 byte", r"bad \udc80 byte"),
        ("prix 9€ é", "prix 9€ é"),
    ],
)
def test_control_characters_are_escaped_and_the_rest_kept(text: str, kept: str) -> None:
    assert printable(text) == kept


@given(st.text())
def test_printable_text_has_no_control_character_and_stays_as_it_is(text: str) -> None:
    kept = printable(text)
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in kept)
    assert "\x00" not in kept
    assert printable(kept) == kept


def test_a_long_text_is_cut_to_the_limit_with_a_marker_saying_how_long_it_was() -> None:
    cut = clipped("9" * 3_000_033, 1024)
    assert len(cut) == 1024
    assert cut.endswith("999... [cut from 3,000,033 characters]")
    assert clipped(cut, 1024) == cut
    assert clipped("short", 1024) == "short"


@given(st.text(), st.integers(min_value=40, max_value=200))
def test_clipped_text_fits_and_stays_as_it_is(text: str, most: int) -> None:
    cut = clipped(text, most)
    assert len(cut) <= most
    assert clipped(cut, most) == cut
    assert cut == text or cut.startswith(text[: most - 40])
