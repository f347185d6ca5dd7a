"""The time a grant lets a read see (sans-I/O): the depth cut at a UTC midnight, the delay
cut at the last candle that closed in time, for any interval."""

from __future__ import annotations

from access.grant import Grant
from charting.gate import DAY_NS, Window
from core.auth_events import PlanClaims
from core.intervals import Interval
from web.tokens import OPEN

S = 1_000_000_000
NOW = 1_767_225_600 * S + 10 * DAY_NS + 3 * 3_600 * S + 7 * 60 * S + 30 * S  # 03:07:30 UTC


def _grant(delay: int, days: int) -> Grant:
    return Grant.anonymous(
        PlanClaims(plan="p", instruments="*", delay=delay, history_days=days, ws_subs=1,
                   ws_conns=1, rpm=1, trade=False)
    )  # fmt: skip


def test_the_depth_starts_at_a_utc_midnight() -> None:
    window = Window.of(_grant(0, 2), NOW)
    midnight = NOW - NOW % DAY_NS
    assert window.floor_ns == midnight - 2 * DAY_NS
    assert window.start(0) == window.floor_ns
    assert window.start(midnight) == midnight
    assert Window.of(_grant(0, 10**6), NOW).floor_ns == 0


def test_the_delay_keeps_only_candles_closed_by_the_cutoff() -> None:
    window = Window.of(_grant(900, 30), NOW)
    cutoff = NOW - 900 * S  # 02:52:30
    assert window.cutoff_ns == cutoff
    minute, hour = Interval.parse("1m"), Interval.parse("1h")
    assert window.candle_end(2**62, minute) == cutoff - 30 * S  # 02:52 opens after: out
    assert window.candle_end(2**62, hour) == cutoff - 52 * 60 * S - 30 * S  # 02:00 is out
    assert window.candle_end(0, hour) == 0
    assert window.tick_end(2**62) == cutoff + 1


def test_a_real_time_plan_and_the_open_grant_cut_nothing_young() -> None:
    for grant in (_grant(0, 30), OPEN):
        window = Window.of(grant, NOW)
        assert window.cutoff_ns is None
        assert window.candle_end(2**62, Interval.parse("1m")) == 2**62
        assert window.tick_end(5) == 5
