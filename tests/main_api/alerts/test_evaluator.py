"""The evaluator's semantics, one rule at a time: conditions, arming, cool-down, expiry, the
gap flag, revised candles, the order of firings and changes to alerts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.alerts import AlertFired, AlertSpec
from core.candles import CandleStatus
from core.gaps import FeedGap, GapReason
from main_api.alerts import AlertEvaluator

from .factories import INSTRUMENT, SECOND, T0, alert, candle, ticks


def evaluator(*specs: AlertSpec) -> AlertEvaluator:
    evaluator = AlertEvaluator()
    evaluator.apply_changes(specs)
    return evaluator


def fired_at(events: list[AlertFired]) -> list[tuple[str, int | None]]:
    """(fire_id, trade id) of each firing, in order."""
    return [(event.fire_id, event.trade_id) for event in events]


# ---- conditions


def test_above_fires_on_the_first_price_at_or_above_even_without_a_crossing() -> None:
    ev = evaluator(alert("a", "above", "100"), alert("b", "above", "105"))
    assert fired_at(ev.step(ticks([100, 104, 106, 107]))) == [("a:1", 1), ("b:1", 3)]


def test_below_fires_on_the_first_price_at_or_below() -> None:
    ev = evaluator(alert("a", "below", "95.5"))
    assert fired_at(ev.step(ticks(["96", "95.51", "95.50", "90"]))) == [("a:1", 3)]


def test_cross_up_needs_a_price_below_then_one_at_or_above() -> None:
    ev = evaluator(alert("a", "cross-up", "100"))
    events = ev.step(ticks([101, 102, 99, 100, 101]))
    assert fired_at(events) == [("a:1", 4)]
    assert events[0].price == Decimal("100")
    assert events[0].ts == T0 + 3 * SECOND


def test_cross_down_needs_a_price_above_then_one_at_or_below() -> None:
    ev = evaluator(alert("a", "cross-down", "100"))
    assert fired_at(ev.step(ticks([99, 98, 101, "100.5", "99.9"]))) == [("a:1", 5)]


def test_a_cross_uses_the_price_seen_before_the_alert_was_set() -> None:
    ev = AlertEvaluator()
    ev.step(ticks([99]))
    ev.apply_changes([alert("a", "cross-up", "100")])
    assert fired_at(ev.step(ticks([100], first_id=2))) == [("a:1", 2)]


def test_a_cross_set_while_the_price_is_past_waits_until_it_comes_back() -> None:
    ev = AlertEvaluator()
    ev.step(ticks([101]))
    ev.apply_changes([alert("a", "cross-up", "100")])
    assert ev.step(ticks([102, 103], first_id=2)) == []
    assert fired_at(ev.step(ticks([99, 100], first_id=4))) == [("a:1", 5)]


def test_move_up_fires_when_the_price_rose_enough_from_the_window_low() -> None:
    ev = evaluator(alert("m", "move-up", "2", window_s=10))
    # 100 at 0 s, 101 at 1 s, 102 at 2 s: 2% above the low.
    assert fired_at(ev.step(ticks([100, 101, 102]))) == [("m:1", 3)]


def test_move_up_does_not_count_a_low_that_has_left_the_window() -> None:
    ev = evaluator(alert("m", "move-up", "2", window_s=10))
    # 100 at 0 s, then 101 at 11 s (the low 100 has left), then 102 at 22 s: never 2% in 10 s.
    assert ev.step(ticks([100, 101, 102], step=11 * SECOND)) == []
    # 100 at 33 s, 102 at 43 s: exactly within the window (start included).
    assert fired_at(
        ev.step(ticks([100, 102], first_id=4, start=T0 + 33 * SECOND, step=10 * SECOND))
    ) == [("m:1", 5)]


def test_move_down_fires_when_the_price_fell_enough_from_the_window_high() -> None:
    ev = evaluator(alert("m", "move-down", "1.5", window_s=60))
    assert fired_at(ev.step(ticks([200, 199, 197, "196.9"]))) == [("m:1", 3)]


def test_thresholds_with_more_places_than_prices_compare_exactly() -> None:
    ev = evaluator(
        alert("up", "above", "1.0000000000000000001"),
        alert("down", "below", "0.9999999999999999999"),
    )
    assert ev.step(ticks(["1"])) == []
    assert fired_at(ev.step(ticks(["1.000000000000000001"], first_id=2))) == [("up:1", 2)]
    assert fired_at(ev.step(ticks(["0.999999999999999999"], first_id=3))) == [("down:1", 3)]


# ---- arming


def test_a_once_alert_fires_once() -> None:
    ev = evaluator(alert("a", "cross-up", "100"))
    assert fired_at(ev.step(ticks([99, 101, 99, 101]))) == [("a:1", 2)]
    assert len(ev) == 0


def test_a_rearm_alert_fires_once_per_crossing_with_the_next_arming() -> None:
    ev = evaluator(alert("a", "above", "100", arming="rearm"))
    events = ev.step(ticks([101, 102, 103, 99, 100, 101, 98, 100]))
    assert fired_at(events) == [("a:1", 1), ("a:2", 5), ("a:3", 8)]


def test_a_rearm_alert_waits_for_its_cooldown() -> None:
    ev = evaluator(alert("a", "cross-up", "100", arming="rearm", cooldown_s=10))
    # Crossings at 1 s (fires), 3 s and 5 s (cooling until 11 s), 12 s (fires).
    prices = [99, 100, 99, 100, 99, 100, 99, 99, 99, 99, 99, 99, 100]
    assert fired_at(ev.step(ticks(prices))) == [("a:1", 2), ("a:2", 13)]


def test_a_level_alert_fires_when_its_cooldown_ends_if_it_was_reset_meanwhile() -> None:
    ev = evaluator(alert("a", "above", "100", arming="rearm", cooldown_s=5))
    # Fires at 0 s, falls back at 1 s (reset), back above from 2 s: fires at 5 s, when cool.
    assert fired_at(ev.step(ticks([101, 99, 101, 102, 103, 104, 105]))) == [("a:1", 1), ("a:2", 6)]


def test_an_alert_does_not_fire_at_or_after_it_expires() -> None:
    ev = evaluator(
        alert("late", "above", "100", expires_at=T0 + 2 * SECOND),
        alert("early", "above", "100", expires_at=T0 + 3 * SECOND),
    )
    assert fired_at(ev.step(ticks([99, 99, 101, 101]))) == [("early:1", 3)]
    assert len(ev) == 0


# ---- gaps


def gap(start: int, end: int) -> FeedGap:
    return FeedGap(instrument=INSTRUMENT, start_ns=start, end_ns=end, reason=GapReason.SEQUENCE)


def test_a_crossing_over_a_feed_gap_is_flagged_and_the_next_one_is_not() -> None:
    ev = evaluator(alert("x", "cross-up", "100"), alert("y", "cross-down", "100", arming="rearm"))
    ev.step(ticks([98, 99]))  # 0 s, 1 s
    # Trades between 1 s and 5 s are missing; the next seen is at 5 s.
    ev.step(gap(T0 + SECOND, T0 + 5 * SECOND + 1))
    events = ev.step(ticks([101, 99], first_id=10, start=T0 + 5 * SECOND))
    assert [(e.fire_id, e.trade_id, e.gap) for e in events] == [
        ("x:1", 10, True),
        ("y:1", 11, False),
    ]


def test_a_gap_already_passed_flags_nothing() -> None:
    ev = evaluator(alert("x", "cross-up", "100"))
    ev.step(ticks([98, 99]))
    ev.step(gap(T0 - 10 * SECOND, T0 - 5 * SECOND))
    assert [e.gap for e in ev.step(ticks([101], first_id=3, start=T0 + 2 * SECOND))] == [False]


# ---- candles


def candle_alert(alert_id: str, condition: str, threshold: str) -> AlertSpec:
    return alert(alert_id, condition, threshold, source="candles", interval="1m")


def test_candle_alerts_fire_on_closed_candles_only() -> None:
    ev = evaluator(candle_alert("c", "cross-up", "100"))
    assert ev.step(candle(0, "99")) == []
    assert ev.step(candle(1, "101", status=CandleStatus.OPEN)) == []
    events = ev.step(candle(1, "101"))
    assert [(e.fire_id, e.candle_open_time, e.trade_id) for e in events] == [
        ("c:1", candle(1, "101").open_time, None)
    ]
    assert events[0].ts == candle(1, "101").close_time


def test_a_revised_candle_that_does_not_cross_fires_nothing() -> None:
    ev = evaluator(candle_alert("up", "cross-up", "100"), candle_alert("down", "cross-down", "95"))
    ev.step(candle(0, "98"))
    ev.step(candle(1, "99"))
    assert ev.step(candle(1, "99.5", revision=1, status=CandleStatus.REVISED)) == []
    assert ev.step(candle(1, "96", revision=2, status=CandleStatus.REVISED)) == []


def test_a_revised_candle_crosses_from_the_close_it_revises() -> None:
    ev = evaluator(candle_alert("up", "cross-up", "100"))
    ev.step(candle(0, "98"))
    ev.step(candle(1, "99"))
    events = ev.step(candle(1, "100.5", revision=1, status=CandleStatus.REVISED))
    assert [e.fire_id for e in events] == ["up:1"]


def test_a_stale_or_repeated_candle_is_ignored() -> None:
    ev = evaluator(candle_alert("up", "cross-up", "100"))
    ev.step(candle(0, "98"))
    ev.step(candle(1, "99"))
    assert ev.step(candle(0, "101", revision=1, status=CandleStatus.REVISED)) == []
    assert ev.step(candle(1, "101")) == []  # revision 0 again: a replay
    assert [e.fire_id for e in ev.step(candle(2, "101"))] == ["up:1"]


def test_a_candle_after_missing_candles_or_flagged_is_a_gap_crossing() -> None:
    ev = evaluator(candle_alert("a", "cross-up", "100"), candle_alert("b", "cross-down", "90"))
    ev.step(candle(0, "98"))
    assert [(e.fire_id, e.gap) for e in ev.step(candle(3, "101"))] == [("a:1", True)]
    assert [(e.fire_id, e.gap) for e in ev.step(candle(4, "89", gap=True))] == [("b:1", True)]


# ---- order and changes


def test_firings_come_in_price_order_then_alert_id_order() -> None:
    specs = [alert(i, "cross-up", t) for i, t in (("c", "100"), ("a", "101"), ("b", "100"))]
    ev = evaluator(*specs)
    assert fired_at(ev.step(ticks([99, 102]))) == [("a:1", 2), ("b:1", 2), ("c:1", 2)]
    ev = evaluator(*specs)
    assert fired_at(ev.step(ticks([99, 100, 101]))) == [("b:1", 2), ("c:1", 2), ("a:1", 3)]


def test_sending_an_alert_again_does_not_fire_it_again() -> None:
    spec = alert("a", "above", "100")
    ev = evaluator(spec)
    assert fired_at(ev.step(ticks([101]))) == [("a:1", 1)]
    ev.apply_changes([spec])
    assert ev.step(ticks([102], first_id=2)) == []


def test_a_changed_alert_arms_again_with_the_next_arming() -> None:
    ev = evaluator(alert("a", "above", "100"), alert("b", "above", "200"))
    assert fired_at(ev.step(ticks([101]))) == [("a:1", 1)]
    ev.apply_changes([alert("a", "above", "102"), alert("b", "above", "103")])
    assert fired_at(ev.step(ticks([103], first_id=2))) == [("a:2", 2), ("b:1", 2)]


def test_a_deleted_alert_stops_firing() -> None:
    ev = evaluator(alert("a", "above", "100"))
    ev.apply_changes([], ["a"])
    assert ev.step(ticks([101])) == []
    assert ev.state_of("a") is None


def test_a_bad_alert_is_refused_before_anything_changes() -> None:
    ev = AlertEvaluator()
    with pytest.raises(ValueError, match="alert m: a move needs a window"):
        ev.apply_changes([alert("ok", "above", "1"), alert("m", "move-up", "1")])
    with pytest.raises(ValueError, match="alert c: an alert on candles needs an interval"):
        ev.apply_changes([alert("c", "above", "1", source="candles")])
    assert len(ev) == 0
