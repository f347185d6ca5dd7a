"""The sans-I/O feed session: frames in, batches, gaps and rejects out, in a sensible order."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from core.gaps import FeedGap, GapReason
from core.ticks import Side, Tick, TickBatch
from ingest.venues.base import BadFrame, LatestTrade, Parsed
from ingest.venues.events import VenueReject
from ingest.venues.session import FeedSession
from ingest.venues.settings import VenueSettings

SECOND = 1_000_000_000
MS = 1_000_000
VENUE_T0 = 1_762_795_433 * SECOND
T0 = 1_800_000_000 * SECOND


class StubVenue:
    """Frames like ``trade BTC 7 100.5`` and ``latest BTC 9`` (a heartbeat naming trade 9 as
    the latest); ``raise``, ``error`` and ``ping`` do what they say."""

    name: ClassVar[str] = "stub"
    default_url: ClassVar[str] = "ws://127.0.0.1:9"
    contiguous_trade_ids: ClassVar[bool] = True
    stale_after: ClassVar[float | None] = 5.0

    def instrument(self, symbol: str) -> str:
        return f"STUB:{symbol}"

    def connect_url(self, base_url: str, symbols: object) -> str:
        return base_url

    def subscribe(self, symbols: object) -> list[str]:
        return ["subscribe"]

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        text = frame if isinstance(frame, str) else frame.decode()
        if text == "raise":
            raise RuntimeError("boom")
        if text == "error":
            return Parsed(error="subscription refused")
        if text == "ping":
            return Parsed(replies=["pong"], alive=True)
        kind, *fields = text.split()
        if kind == "latest":
            symbol, trade_id = fields
            number = int(trade_id)
            latest = LatestTrade(f"STUB:{symbol}", number, VENUE_T0 + number * SECOND + 1)
            return Parsed(latest=[latest], alive=True)
        if kind != "trade":
            return Parsed(bad=[BadFrame.of("unknown_shape", f"no such message {kind!r}", frame)])
        symbol, trade_id, price = fields
        number = int(trade_id)
        tick = Tick(
            f"STUB:{symbol}", number, Decimal(price), Decimal(1), Side.BUY,
            VENUE_T0 + number * SECOND, recv_ns,
        )  # fmt: skip
        return Parsed(ticks=[tick])


def session(**settings: float | int) -> FeedSession:
    options: dict[str, float | int] = {"batch_max": 100, "batch_wait": 0.05, "gap_grace": 2.0}
    options.update(settings)
    feed = FeedSession(StubVenue(), ["BTC", "ETH"], VenueSettings(**options))  # type: ignore[arg-type]
    feed.connected(T0)
    return feed


def batches(events: Sequence[object]) -> list[list[int]]:
    return [batch.trade_id.tolist() for batch in events if isinstance(batch, TickBatch)]


def test_a_malformed_frame_becomes_a_reject_and_the_feed_goes_on() -> None:
    feed = session(batch_wait=0.0)
    (reject,) = feed.on_frame("garbage", T0).events
    assert reject == VenueReject(
        "stub", BadFrame("unknown_shape", "no such message 'garbage'", "garbage"), T0
    )
    assert batches(feed.on_frame("trade BTC 1 100", T0 + 1).events) == [[1]]
    assert feed.counters.bad_frames == 1
    assert feed.counters.frames == 2


def test_a_protocol_that_raises_costs_one_reject_not_the_feed() -> None:
    feed = session(batch_wait=0.0)
    (reject,) = feed.on_frame("raise", T0).events
    assert isinstance(reject, VenueReject)
    assert reject.bad.reason == "parse_failed"
    assert "RuntimeError: boom" in reject.bad.detail
    assert batches(feed.on_frame("trade BTC 1 100", T0).events) == [[1]]


def test_ticks_go_out_in_batches_of_batch_max_or_after_batch_wait() -> None:
    feed = session(batch_max=2, batch_wait=0.05)
    assert feed.on_frame("trade BTC 1 100", T0).events == []
    assert batches(feed.on_frame("trade BTC 2 100", T0 + MS).events) == [[1, 2]]
    assert feed.on_frame("trade BTC 3 100", T0 + 2 * MS).events == []
    assert feed.next_deadline() == T0 + 52 * MS
    assert feed.on_timer(T0 + 51 * MS) == []
    assert batches(feed.on_timer(T0 + 52 * MS)) == [[3]]
    assert feed.counters.batches == 2
    assert feed.counters.ticks == 3


def test_a_gap_goes_out_after_the_ticks_of_its_instrument_received_before_it() -> None:
    feed = session(batch_wait=10.0, gap_grace=1.0)
    feed.on_frame("trade BTC 1 100", T0)
    feed.on_frame("trade ETH 1 100", T0)
    feed.on_frame("trade BTC 4 100", T0)
    events = feed.on_timer(T0 + SECOND)
    assert [type(e) for e in events] == [TickBatch, FeedGap]
    batch, gap = events
    assert isinstance(batch, TickBatch)
    assert isinstance(gap, FeedGap)
    assert batch.trade_id.tolist() == [1, 4]
    assert batch.instrument == gap.instrument == "STUB:BTC"
    assert (gap.start_ns, gap.end_ns, gap.reason) == (
        VENUE_T0 + SECOND,
        VENUE_T0 + 4 * SECOND + 1,
        GapReason.SEQUENCE,
    )
    assert feed.counters.gaps == 1
    assert batches(feed.finish(T0 + 2 * SECOND)) == [[1]]  # ETH's tick was still waiting


def test_replies_and_venue_errors_are_handed_to_the_shell() -> None:
    feed = session()
    assert feed.on_frame("ping", T0).replies == ["pong"]
    assert feed.on_frame("error", T0).error == "subscription refused"
    assert feed.counters.venue_errors == 1


def test_ticks_whose_scales_do_not_share_a_batch_go_out_one_per_batch() -> None:
    feed = session(batch_max=2, batch_wait=10.0)
    assert feed.on_frame("trade BTC 1 100000000000000000", T0).events == []
    events = feed.on_frame("trade BTC 2 0.000000000000000001", T0).events
    assert batches(events) == [[1], [2]]  # 10**17 at 18 places would not fit 64 bits
    assert feed.counters.bad_frames == 0


def test_a_lost_connection_sends_what_was_received_and_its_gap_comes_with_the_next_trade() -> None:
    feed = session(batch_wait=10.0)
    feed.on_frame("trade BTC 1 100", T0)
    assert batches(feed.disconnected(T0 + SECOND, "ConnectionClosedError")) == [[1]]
    assert feed.counters.connected is False
    assert feed.counters.last_error == "ConnectionClosedError"
    feed.connected(T0 + 2 * SECOND)
    events = feed.on_frame("trade BTC 2 100", T0 + 3 * SECOND).events
    gaps = [e for e in events if isinstance(e, FeedGap)]
    assert [(g.instrument, g.reason) for g in gaps] == [("STUB:BTC", GapReason.DISCONNECTED)]
    assert {g.instrument for g in feed.finish(T0 + 4 * SECOND) if isinstance(g, FeedGap)} == {
        "STUB:ETH"
    }


def test_a_heartbeat_naming_a_trade_id_not_seen_is_a_sequence_gap_after_the_grace() -> None:
    feed = session(batch_wait=0.0, gap_grace=1.0)
    assert batches(feed.on_frame("trade BTC 1 100", T0).events) == [[1]]
    assert feed.on_frame("latest BTC 1", T0 + MS).events == []  # nothing missed
    assert feed.on_frame("latest BTC 3", T0 + 2 * MS).events == []
    assert feed.next_deadline() == T0 + 2 * MS + SECOND
    (gap,) = feed.on_timer(T0 + 2 * MS + SECOND)
    assert isinstance(gap, FeedGap)
    assert (gap.instrument, gap.start_ns, gap.end_ns, gap.reason) == (
        "STUB:BTC",
        VENUE_T0 + SECOND,
        VENUE_T0 + 3 * SECOND + 2,
        GapReason.SEQUENCE,
    )
    assert gap.detail == "trade ids 2..3 missing (the venue named trade id 3 as its latest)"
    assert batches(feed.on_frame("trade BTC 4 100", T0 + 2 * SECOND).events) == [[4]]
    assert feed.counters.gaps == 1
