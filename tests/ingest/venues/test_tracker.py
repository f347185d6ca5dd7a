"""The feed tracker: repeats dropped, holes filled or reported, outages spanned, each gap once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.gaps import FeedGap, GapReason
from core.ticks import Side, Tick
from ingest.venues.tracker import FeedTracker

BTC = "KRAKEN:BTC/USD"
ETH = "KRAKEN:ETH/USD"
SECOND = 1_000_000_000
GRACE = 2 * SECOND
VENUE_T0 = 1_762_795_433 * SECOND
"""Venue time of trade 0."""
WALL_T0 = 1_800_000_000 * SECOND
"""Wall clock at the start of each test (venue and wall clocks differ, as in replays)."""


def ts(trade_id: int) -> int:
    """Venue time of a trade: one second per id, so spans can be read off the ids."""
    return VENUE_T0 + trade_id * SECOND


def trade(trade_id: int, instrument: str = BTC, recv: int = WALL_T0) -> Tick:
    return Tick(
        instrument, trade_id, Decimal("100.5"), Decimal("0.25"), Side.BUY, ts(trade_id), recv
    )


def tracker(contiguous: bool = True) -> FeedTracker:
    return FeedTracker([BTC], contiguous=contiguous, grace_ns=GRACE)


def ids(ticks: list[Tick]) -> list[int]:
    return [tick.trade_id for tick in ticks]


def test_a_repeated_trade_is_dropped_also_after_a_reconnect_snapshot() -> None:
    feed = tracker()
    assert ids(feed.accept([trade(1), trade(2)], WALL_T0).fresh) == [1, 2]
    feed.disconnected(WALL_T0 + SECOND)
    feed.connected(WALL_T0 + 2 * SECOND)
    result = feed.accept([trade(2), trade(1), trade(3)], WALL_T0 + 3 * SECOND, snapshot=True)
    assert ids(result.fresh) == [3]
    assert result.duplicates == 2
    assert feed.accept([trade(3)], WALL_T0 + 4 * SECOND).duplicates == 1


def test_trades_older_than_the_first_one_seen_count_as_seen() -> None:
    feed = tracker()
    feed.accept([trade(10)], WALL_T0)
    result = feed.accept([trade(8), trade(9)], WALL_T0, snapshot=True)
    assert result.fresh == []
    assert result.duplicates == 2


def test_a_reordered_trade_fills_its_hole_within_the_grace_and_no_gap_is_reported() -> None:
    feed = tracker()
    feed.accept([trade(1), trade(3)], WALL_T0)
    assert feed.next_deadline() == WALL_T0 + GRACE
    assert ids(feed.accept([trade(2)], WALL_T0 + SECOND).fresh) == [2]
    assert feed.next_deadline() is None
    assert feed.expire(WALL_T0 + 10 * GRACE) == []
    assert feed.finish(WALL_T0 + 10 * GRACE) == []


def test_a_hole_still_open_after_the_grace_is_one_gap_from_the_trade_before_to_the_one_after() -> (
    None
):
    feed = tracker()
    feed.accept([trade(1), trade(2), trade(5), trade(6)], WALL_T0)
    assert feed.expire(WALL_T0 + GRACE - 1) == []
    (gap,) = feed.expire(WALL_T0 + GRACE)
    assert gap == FeedGap(
        instrument=BTC,
        start_ns=ts(2),
        end_ns=ts(5) + 1,
        reason=GapReason.SEQUENCE,
        detail="trade ids 3..4 missing",
        ts_recv=WALL_T0 + GRACE,
    )
    assert feed.expire(WALL_T0 + 10 * GRACE) == []
    assert feed.finish(WALL_T0 + 10 * GRACE) == []


def test_a_partly_filled_hole_reports_only_the_trades_still_missing() -> None:
    feed = tracker()
    feed.accept([trade(1), trade(6)], WALL_T0)
    feed.accept([trade(4)], WALL_T0 + SECOND)
    gaps = feed.expire(WALL_T0 + GRACE)
    assert [(g.start_ns, g.end_ns, g.detail) for g in gaps] == [
        (ts(1), ts(4) + 1, "trade ids 2..3 missing"),
        (ts(4), ts(6) + 1, "trade id 5 missing"),
    ]


def test_a_trade_of_a_reported_hole_passes_once_and_then_is_a_repeat() -> None:
    feed = tracker()
    feed.accept([trade(1), trade(3)], WALL_T0)
    assert len(feed.expire(WALL_T0 + GRACE)) == 1
    assert ids(feed.accept([trade(2)], WALL_T0 + GRACE).fresh) == [2]
    assert feed.accept([trade(2)], WALL_T0 + GRACE).duplicates == 1


def test_a_hole_open_at_a_drop_waits_for_the_snapshot_after_the_reconnect() -> None:
    feed = tracker()
    feed.accept([trade(1), trade(3)], WALL_T0)
    feed.disconnected(WALL_T0 + SECOND)
    assert feed.expire(WALL_T0 + 100 * GRACE) == []  # no expiry while the connection is down
    feed.connected(WALL_T0 + 100 * GRACE)
    assert feed.expire(WALL_T0 + 100 * GRACE + GRACE - 1) == []  # grace again from the reconnect
    snapshot = feed.accept([trade(3), trade(2), trade(1)], WALL_T0 + 101 * GRACE, snapshot=True)
    assert ids(snapshot.fresh) == [2]
    assert snapshot.gaps == []
    (gap,) = feed.finish(WALL_T0 + 200 * GRACE)  # the hole is filled: only the outage is left
    assert gap.reason is GapReason.DISCONNECTED


def test_a_lost_connection_is_one_gap_from_the_last_trade_before_to_the_first_new_one_after() -> (
    None
):
    feed = tracker()
    feed.accept([trade(1), trade(2)], WALL_T0)
    feed.disconnected(WALL_T0 + SECOND)
    feed.disconnected(WALL_T0 + 2 * SECOND)  # a refused reconnect: still the same outage
    feed.connected(WALL_T0 + 3 * SECOND)
    assert feed.accept([trade(1), trade(2)], WALL_T0 + 3 * SECOND, snapshot=True).gaps == []
    result = feed.accept([trade(3), trade(4)], WALL_T0 + 4 * SECOND)
    (gap,) = result.gaps
    assert (gap.start_ns, gap.end_ns, gap.reason) == (ts(2), ts(3) + 1, GapReason.DISCONNECTED)
    assert "connection lost for 2.000 s" in gap.detail
    assert "trade ids continue across it (2, 3)" in gap.detail
    assert ids(result.fresh) == [3, 4]
    assert feed.accept([trade(5)], WALL_T0 + 5 * SECOND).gaps == []
    assert feed.finish(WALL_T0 + 6 * SECOND) == []


def test_trades_missed_during_a_drop_are_named_by_its_gap_and_not_reported_again_as_a_hole() -> (
    None
):
    feed = tracker()
    feed.accept([trade(1), trade(2)], WALL_T0)
    feed.disconnected(WALL_T0)
    feed.connected(WALL_T0 + SECOND)
    (gap,) = feed.accept([trade(6)], WALL_T0 + SECOND).gaps
    assert (gap.start_ns, gap.end_ns) == (ts(2), ts(6) + 1)
    assert gap.detail.endswith("trade ids 3..5 missing")
    assert feed.expire(WALL_T0 + 10 * GRACE) == []
    assert feed.finish(WALL_T0 + 10 * GRACE) == []
    assert ids(feed.accept([trade(4)], WALL_T0 + 11 * GRACE).fresh) == [4]  # late, not lost


def test_an_instrument_quiet_before_a_drop_gets_a_gap_from_the_estimated_venue_time() -> None:
    feed = FeedTracker([BTC, ETH], contiguous=True, grace_ns=GRACE)
    recv = WALL_T0 + 5 * SECOND
    feed.heard(recv)
    feed.accept([trade(1, recv=recv)], recv)
    feed.heard(recv + 3 * SECOND)  # a heartbeat: the venue was still there
    feed.disconnected(recv + 10 * SECOND)
    feed.connected(recv + 11 * SECOND)
    (eth_gap,) = feed.accept([trade(7, ETH, recv=recv + 20 * SECOND)], recv + 20 * SECOND).gaps
    assert eth_gap.start_ns == ts(1) + 3 * SECOND  # venue time of the last frame heard
    assert eth_gap.end_ns == ts(7) + 1
    (btc_gap,) = feed.finish(recv + 30 * SECOND)
    assert btc_gap.instrument == BTC
    assert btc_gap.start_ns == ts(1)
    assert btc_gap.end_ns == ts(7) + 10 * SECOND  # the estimate: ETH's offset at the stop
    assert "no new trade came before the feed stopped" in btc_gap.detail


def test_the_finish_reports_open_holes_and_outages_once() -> None:
    feed = tracker()
    feed.accept([trade(1), trade(4)], WALL_T0)
    feed.disconnected(WALL_T0 + SECOND)
    gaps = feed.finish(WALL_T0 + SECOND)
    assert sorted((g.reason, g.start_ns) for g in gaps) == [
        (GapReason.DISCONNECTED, ts(4)),
        (GapReason.SEQUENCE, ts(1)),
    ]
    assert feed.finish(WALL_T0 + 2 * SECOND) == []


def test_without_contiguous_ids_repeats_are_dropped_within_the_window_and_no_hole_is_seen() -> None:
    feed = FeedTracker([BTC], contiguous=False, grace_ns=GRACE, window=3)
    assert ids(feed.accept([trade(10), trade(30), trade(20)], WALL_T0).fresh) == [10, 30, 20]
    assert feed.accept([trade(30)], WALL_T0).duplicates == 1
    assert feed.next_deadline() is None
    assert feed.finish(WALL_T0 + 10 * GRACE) == []
    feed.accept([trade(40)], WALL_T0)  # the window holds 30, 20, 40 now
    assert ids(feed.accept([trade(10)], WALL_T0).fresh) == [10]


def test_without_contiguous_ids_an_outage_ends_at_the_first_trade_not_older_than_the_drop() -> None:
    feed = FeedTracker([BTC], contiguous=False, grace_ns=GRACE)
    feed.accept([trade(5)], WALL_T0)
    feed.disconnected(WALL_T0)
    feed.connected(WALL_T0)
    assert feed.accept([trade(4)], WALL_T0).gaps == []  # an older trade never seen: no end
    (gap,) = feed.accept([trade(9)], WALL_T0).gaps
    assert (gap.start_ns, gap.end_ns) == (ts(5), ts(9) + 1)


def test_a_feed_resumed_from_a_stored_trade_closes_one_gap_from_it_at_the_first_new_trade() -> None:
    feed = FeedTracker([BTC, ETH], contiguous=True, grace_ns=GRACE)
    feed.resume(BTC, 10, ts(10))
    feed.connected(WALL_T0)
    feed.latest(BTC, 20, named(20), WALL_T0)  # ignored: the outage settles what is missing
    result = feed.accept([trade(12), trade(8), trade(10), trade(13)], WALL_T0, snapshot=True)
    assert ids(result.fresh) == [12, 13]
    assert result.duplicates == 2  # 8 and 10 were stored before the stop
    (gap,) = result.gaps
    assert gap == FeedGap(
        instrument=BTC,
        start_ns=ts(10),
        end_ns=ts(12) + 1,
        reason=GapReason.DISCONNECTED,
        detail="the platform was stopped after the stored trade id 10; trade id 11 missing",
        ts_recv=WALL_T0,
    )
    assert feed.accept([trade(14)], WALL_T0 + SECOND).gaps == []
    assert ids(feed.accept([trade(11)], WALL_T0 + SECOND).fresh) == [11]  # late, not lost
    assert feed.expire(WALL_T0 + 10 * GRACE) == []
    assert feed.finish(WALL_T0 + 10 * GRACE) == []  # ETH had nothing stored: no resume point


def test_a_resumed_feed_whose_next_trade_follows_the_stored_one_says_the_ids_continue() -> None:
    feed = tracker()
    feed.resume(BTC, 10, ts(10))
    feed.connected(WALL_T0)
    feed.disconnected(WALL_T0 + SECOND)  # a drop before any trade: still the same outage
    feed.connected(WALL_T0 + 2 * SECOND)
    result = feed.accept([trade(9), trade(10), trade(11)], WALL_T0 + 3 * SECOND, snapshot=True)
    assert (ids(result.fresh), result.duplicates) == ([11], 2)
    (gap,) = result.gaps
    assert (gap.start_ns, gap.end_ns, gap.reason) == (ts(10), ts(11) + 1, GapReason.DISCONNECTED)
    assert gap.detail == (
        "the platform was stopped after the stored trade id 10; "
        "trade ids continue across it (10, 11)"
    )
    assert feed.finish(WALL_T0 + 4 * SECOND) == []


def test_a_resumed_feed_stopped_before_any_new_trade_reports_the_restart_gap_at_the_finish() -> (
    None
):
    feed = tracker()
    feed.resume(BTC, 10, ts(10))
    feed.connected(WALL_T0)
    assert feed.accept([trade(10)], WALL_T0, snapshot=True).duplicates == 1
    (gap,) = feed.finish(WALL_T0 + SECOND)
    assert (gap.start_ns, gap.reason) == (ts(10), GapReason.DISCONNECTED)
    assert gap.end_ns == WALL_T0 + SECOND  # the venue-time estimate (no trade to measure by)
    assert gap.detail.startswith("the platform was stopped after the stored trade id 10; no new")


def test_without_contiguous_ids_a_resumed_feed_drops_ids_up_to_the_stored_one() -> None:
    feed = FeedTracker([BTC], contiguous=False, grace_ns=GRACE)
    feed.resume(BTC, 50, ts(50))
    feed.connected(WALL_T0)
    result = feed.accept([trade(30), trade(50), trade(70), trade(60)], WALL_T0)
    assert (ids(result.fresh), result.duplicates) == ([70, 60], 2)
    (gap,) = result.gaps
    assert (gap.start_ns, gap.end_ns, gap.reason) == (ts(50), ts(70) + 1, GapReason.DISCONNECTED)
    assert gap.detail == "the platform was stopped after the stored trade id 50"
    assert feed.accept([trade(70)], WALL_T0).duplicates == 1
    assert feed.finish(WALL_T0 + SECOND) == []


def test_resume_is_refused_for_an_instrument_not_subscribed_or_already_traded() -> None:
    feed = tracker()
    with pytest.raises(ValueError, match="not one of the feed's instruments"):
        feed.resume(ETH, 1, ts(1))
    feed.accept([trade(1)], WALL_T0)
    with pytest.raises(ValueError, match="has had trades"):
        feed.resume(BTC, 1, ts(1))


def named(trade_id: int) -> int:
    """Venue time of a heartbeat naming ``trade_id`` as the latest: after that trade, before
    the next."""
    return ts(trade_id) + SECOND // 2


def test_a_latest_trade_id_beyond_those_seen_is_a_hole_at_once_that_no_later_trade_must_show() -> (
    None
):
    feed = tracker()
    feed.accept([trade(1), trade(2)], WALL_T0)
    feed.latest(BTC, 4, named(4), WALL_T0 + SECOND)
    assert feed.next_deadline() == WALL_T0 + SECOND + GRACE
    assert feed.expire(WALL_T0 + SECOND + GRACE - 1) == []
    (gap,) = feed.expire(WALL_T0 + SECOND + GRACE)
    assert gap == FeedGap(
        instrument=BTC,
        start_ns=ts(2),
        end_ns=named(4) + 1,
        reason=GapReason.SEQUENCE,
        detail="trade ids 3..4 missing (the venue named trade id 4 as its latest)",
        ts_recv=WALL_T0 + SECOND + GRACE,
    )
    result = feed.accept([trade(5)], WALL_T0 + 10 * GRACE)
    assert (ids(result.fresh), result.gaps, feed.next_deadline()) == ([5], [], None)
    assert ids(feed.accept([trade(4), trade(4)], WALL_T0 + 10 * GRACE).fresh) == [4]  # late
    assert feed.finish(WALL_T0 + 11 * GRACE) == []


def test_trades_named_as_the_latest_that_come_within_the_grace_leave_no_gap() -> None:
    feed = tracker()
    feed.accept([trade(1)], WALL_T0)
    feed.latest(BTC, 3, named(3), WALL_T0)
    assert ids(feed.accept([trade(3)], WALL_T0 + 1).fresh) == [3]
    feed.latest(BTC, 3, named(3), WALL_T0 + 2)  # the same again: nothing new
    assert ids(feed.accept([trade(2), trade(4)], WALL_T0 + 3).fresh) == [2, 4]
    assert feed.next_deadline() is None
    assert feed.finish(WALL_T0 + 10 * GRACE) == []


def test_a_latest_trade_id_is_ignored_before_the_first_trade_and_while_an_outage_is_open() -> None:
    feed = tracker()
    feed.latest(BTC, 7, named(7), WALL_T0)  # nothing seen yet: nothing to measure from
    assert ids(feed.accept([trade(5)], WALL_T0).fresh) == [5]
    assert feed.next_deadline() is None
    feed.disconnected(WALL_T0 + SECOND)
    feed.connected(WALL_T0 + 2 * SECOND)
    feed.latest(BTC, 9, named(9), WALL_T0 + 2 * SECOND)  # the outage's first trade decides
    (gap,) = feed.accept([trade(10)], WALL_T0 + 3 * SECOND).gaps
    assert gap.reason is GapReason.DISCONNECTED
    assert gap.detail.endswith("trade ids 6..9 missing")
    assert feed.finish(WALL_T0 + 10 * GRACE) == []


def test_without_contiguous_ids_a_latest_trade_id_proves_nothing() -> None:
    feed = tracker(contiguous=False)
    feed.accept([trade(1)], WALL_T0)
    feed.latest(BTC, 5, named(5), WALL_T0)
    assert feed.next_deadline() is None
    assert feed.finish(WALL_T0 + 10 * GRACE) == []


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(min_value=2, max_value=60),
    data=st.data(),
)
def test_every_missing_trade_is_in_exactly_one_reported_hole_and_every_gap_misses_one(
    count: int, data: st.DataObject
) -> None:
    """Whatever the order, repeats, losses and heartbeats naming the latest trade id: each
    trade passes once, and the gaps are exactly the holes left (trade 1 arrives first; later
    ones in any order)."""
    lost = data.draw(st.sets(st.integers(2, count)))
    delivered = [k for k in range(2, count + 1) if k not in lost]
    order = [1, *data.draw(st.permutations(delivered))]
    repeats = data.draw(st.lists(st.sampled_from(order), max_size=10))
    beats = data.draw(
        st.lists(st.tuples(st.integers(0, len(order) - 1), st.integers(1, count)), max_size=5)
    )  # (after the n-th trade delivered, the venue names trade id k as its latest)
    feed = tracker()
    fresh: list[int] = []
    gaps: list[FeedGap] = []
    for n, trade_id in enumerate(order + repeats):
        result = feed.accept([trade(trade_id)], WALL_T0 + n)
        fresh.extend(ids(result.fresh))
        gaps.extend(result.gaps)
        for _, latest in (beat for beat in beats if beat[0] == n):
            feed.latest(BTC, latest, named(latest), WALL_T0 + n)
    gaps.extend(feed.finish(WALL_T0 + len(order) + len(repeats)))
    assert sorted(fresh) == sorted(order)
    highest = max(order)
    named_last = max((latest for _, latest in beats), default=0)
    # beyond the last trade (or the last one the venue named) nothing is known
    expected_missing = {k for k in lost if k < highest or k <= named_last}
    covered = [
        {k for k in range(1, count + 1) if ts(k) > g.start_ns and ts(k) < g.end_ns - 1}
        for g in gaps
    ]
    assert all(g.reason is GapReason.SEQUENCE for g in gaps)
    assert set().union(*covered) == expected_missing
    assert all(hole and hole <= expected_missing for hole in covered)
    assert sum(len(hole) for hole in covered) == len(expected_missing)  # no trade twice
