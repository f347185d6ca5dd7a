"""A repeated log line: the first of each kind through at once, then one a window, the ones
held back counted and told once."""

from __future__ import annotations

import pytest

from telemetry.log_limits import RepeatWindows


def test_the_first_of_a_kind_goes_through_and_its_repeats_within_the_window_are_held() -> None:
    windows: RepeatWindows[str] = RepeatWindows(every=60.0)
    assert windows.offer("a", 0.0) == 0
    assert [windows.offer("a", t) for t in (1.0, 30.0, 59.9)] == [None, None, None]
    assert windows.offer("b", 59.9) == 0  # another kind: at once
    assert windows.offer("a", 60.0) == 3  # the next window: through, saying how many were held


def test_a_window_that_ended_with_lines_held_is_told_once_with_their_count() -> None:
    windows: RepeatWindows[str] = RepeatWindows(every=60.0)
    windows.offer("a", 0.0)
    windows.offer("b", 10.0)
    for t in (1.0, 2.0):
        windows.offer("a", t)
    windows.offer("b", 11.0)
    assert windows.ended(59.0) == []
    assert windows.ended(60.0) == [("a", 2)]
    assert windows.ended(65.0) == []  # told: not again, and b's window is still open
    assert windows.ended(70.0) == [("b", 1)]
    assert windows.ended(500.0) == []
    assert windows.offer("a", 500.0) == 0  # its count was told by ended, not again


def test_a_window_with_nothing_held_is_not_told() -> None:
    windows: RepeatWindows[str] = RepeatWindows(every=1.0)
    windows.offer("a", 0.0)
    assert windows.ended(10.0) == []


def test_the_kinds_remembered_are_bounded_the_least_recent_forgotten() -> None:
    windows: RepeatWindows[int] = RepeatWindows(every=60.0, max_kinds=2)
    for key in (1, 2, 3):
        assert windows.offer(key, 0.0) == 0
    assert len(windows) == 2
    assert windows.offer(3, 1.0) is None
    assert windows.offer(1, 1.0) == 0  # forgotten: through again at once


@pytest.mark.parametrize(("every", "kinds"), [(0.0, 1), (-1.0, 1), (float("nan"), 1), (1.0, 0)])
def test_a_window_must_be_positive_and_some_kinds_remembered(every: float, kinds: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RepeatWindows(every=every, max_kinds=kinds)
