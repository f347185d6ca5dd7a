"""The step journal's entries: what each version reads."""

from __future__ import annotations

import msgspec
import pytest

from streams.kafka.journal import (
    JOURNAL_VERSION,
    NewerJournalError,
    Step,
    decode_entry,
    encode_entry,
)

STEP = Step(group="g", partition=0, epoch=1, seq=7, start=10, end=20, now_ns=5, caught_up=False)


def test_a_step_reads_back_as_written() -> None:
    assert decode_entry(encode_entry(STEP)) == STEP


def test_a_step_written_before_caught_up_existed_replays_on_the_wall_clock() -> None:
    old = msgspec.msgpack.encode(
        {"type": "step", "group": "g", "partition": 0, "epoch": 1, "seq": 7, "start": 10,
         "end": 20, "now_ns": 5, "v": 1}
    )  # fmt: skip
    entry = decode_entry(old)
    assert isinstance(entry, Step)
    assert entry.caught_up


def test_an_entry_of_a_later_version_is_refused_not_misread() -> None:
    later = msgspec.structs.replace(STEP, v=JOURNAL_VERSION + 1)
    with pytest.raises(
        NewerJournalError, match=f"version {JOURNAL_VERSION + 1} was written by a newer"
    ):
        decode_entry(encode_entry(later))


def test_a_newer_entry_is_no_value_error_which_a_recovery_steps_over() -> None:
    """The recovery skips what raises ``ValueError`` (a stray record); a newer worker's entry
    must not be skipped (its claim fences older owners), so it is not one."""
    later = msgspec.structs.replace(STEP, v=JOURNAL_VERSION + 1)
    with pytest.raises(NewerJournalError) as caught:
        decode_entry(encode_entry(later))
    assert not isinstance(caught.value, ValueError)
