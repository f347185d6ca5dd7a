"""``mdp ingest --venue`` on the real broker: a live venue's trades onto ``md.ticks`` through a
dropped connection, repeats, a swap and a malformed frame, as a clean replay would give them,
with one feed-gap marker for the drop in its place among the ticks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import msgspec

from core import codecs
from core.gaps import FeedGap, GapReason
from core.ticks import Tick, TickBatch
from core.topics import TICKS, TICKS_REJECTED
from streams.bus import Record
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.ingest.venues.fakes.kraken import SYMBOL, KrakenScript
from tests.ingest.venues.fakes.server import FakeVenue, Faults, malformed
from tests.ingest.venues.harness import KRAKEN, gap_span, trade_frames, trade_ids_per_frame

WAIT = 90.0
IDLE = 1.0
"""Seconds without a new record after which the topics are taken as read to the end."""
TRADES = 471
"""Trades in the shared Kraken file."""


def without_recv(tick: Tick) -> Tick:
    return msgspec.structs.replace(tick, ts_recv=1)


async def test_mdp_ingest_from_a_fake_kraken_publishes_a_clean_replay_and_a_gap_for_the_drop(
    shared_data: Path, fresh_topics: str, tmp_path: Path
) -> None:
    script = KrakenScript.from_file(shared_data)
    frames = script.frames()
    usable = trade_frames(KRAKEN, frames)
    drop, repeat, swap, bad = (usable[len(usable) * k // 5] for k in (2, 1, 3, 4))
    faults = Faults(drop_after={drop}, repeat={repeat}, swap={swap}, malformed_before={bad})
    log = tmp_path / "ingest.log"
    records: list[Record] = []
    settings = KafkaSettings(fresh_topics)
    async with (
        FakeVenue(script, faults, keepalive='{"channel":"heartbeat"}') as venue,
        KafkaBus(settings, create_topics=False) as bus,
        bus.subscribe(f"reader-{uuid.uuid4().hex}", [TICKS, TICKS_REJECTED]) as subscription,
    ):
        url = venue.url
        with log.open("wb") as sink:
            ingest = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mdp.cli", "ingest",
                "--venue", "kraken", "--symbols", SYMBOL, "--venue-url", url,
                env=os.environ | {"KAFKA_BOOTSTRAP": fresh_topics},
                stdout=sink,
                stderr=sink,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + WAIT
            while published(records) < TRADES:
                assert time.monotonic() < deadline, log.read_text()
                assert ingest.returncode is None, log.read_text()
                records.extend(await subscription.poll(1000, 0.5))
        finally:
            if ingest.returncode is None:
                ingest.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(ingest.wait(), WAIT) == 0, log.read_text()
        while more := await subscription.poll(1000, IDLE):
            records.extend(more)
    output = log.read_text()
    assert f"{TRADES} ticks" in output
    assert "1 bad rows or frames rejected; 1 feed gaps" in output
    assert "Traceback" not in output

    ticks_topic = sorted((r for r in records if r.topic == TICKS), key=lambda r: r.offset)
    assert {r.partition for r in ticks_topic} == {ticks_topic[0].partition}  # keyed alike
    events = [_decode(r) for r in ticks_topic]
    published_ticks = [t for e in events if isinstance(e, TickBatch) for t in e.ticks()]
    reference = KRAKEN.reference(shared_data)
    by_id = sorted(published_ticks, key=lambda tick: tick.trade_id)
    assert list(map(without_recv, by_id)) == list(map(without_recv, reference))

    ids = trade_ids_per_frame(KRAKEN, frames)
    before = [i for frame in ids[: drop + 1] for i in frame]
    after = [i for frame in ids[drop + 1 :] for i in frame]
    (gap,) = (e for e in events if isinstance(e, FeedGap))
    assert gap.instrument == f"KRAKEN:{SYMBOL}"
    assert gap.reason is GapReason.DISCONNECTED
    assert (gap.start_ns, gap.end_ns) == gap_span(reference, before, after)
    place = events.index(gap)
    ahead = {t.trade_id for e in events[:place] if isinstance(e, TickBatch) for t in e.ticks()}
    assert ahead == set(before)  # the marker travels between the ticks around the drop

    (reject,) = (codecs.decode_rejected(r.value) for r in records if r.topic == TICKS_REJECTED)
    assert reject.reason == "bad_venue_message"
    assert reject.detail.startswith("not_json: ")
    assert reject.payload == malformed(frames[bad]).encode()
    assert reject.origin == url


def _decode(record: Record) -> TickBatch | FeedGap:
    return codecs.decode_ticks_message(record.value)


def published(records: list[Record]) -> int:
    """Ticks in the tick batches among ``records``."""
    events = (_decode(r) for r in records if r.topic == TICKS)
    return sum(len(e) for e in events if isinstance(e, TickBatch))
