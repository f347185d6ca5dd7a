"""A tick channel encodes its messages when they are first read: one nobody reads costs no
JSON, and what is read later (a late frame, a resume, a snapshot) carries exactly the ticks
it was given, in order, under the sequence numbers they were given."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from core.ticks import TickBatch
from ws_gateway.channels import TickChannel
from ws_gateway.wire import ChannelKey, tick_json

from .market import BTC, small_batches


def one_batch(rows: int) -> TickBatch:
    """``rows`` ticks of BTC in one batch, trade ids rising."""
    batches = small_batches(rate=1000.0, duration=rows / 1000 + 1, rows=rows)
    batch = batches[0]
    assert len(batch) == rows
    return batch


def channel(recent: int = 600, replay: int = 100) -> TickChannel:
    return TickChannel(
        ChannelKey("ticks", BTC, None), "e1", replay, 500, recent, lambda p: b"F" + p
    )


def decoded(payload: bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(payload)
    return message


def test_a_channel_nobody_reads_encodes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def counting(batch: TickBatch, start: int, stop: int) -> list[bytes]:
        calls.append(stop - start)
        return tick_json(batch, start, stop)

    monkeypatch.setattr("ws_gateway.channels.tick_json", counting)
    ticks = channel()
    deliveries = ticks.update(one_batch(700))
    assert [d.seq for d in deliveries] == [1, 2]
    assert calls == []
    assert deliveries[1].frame == b"F" + deliveries[1].payload  # read: encoded now, once
    assert calls == [200]
    assert deliveries[1].payload is deliveries[1].payload
    assert calls == [200]


def test_messages_read_later_carry_their_ticks_in_order() -> None:
    ticks = channel()
    batch = one_batch(700)
    deliveries = ticks.update(batch)
    later = ticks.missed(0)
    assert later is not None
    assert [d.seq for d in later] == [1, 2]
    ids = [int(t["trade_id"]) for d in later for t in decoded(d.payload)["ticks"]]
    assert ids == batch.trade_id.tolist()
    assert [decoded(d.payload)["seq"] for d in deliveries] == [1, 2]


@pytest.mark.parametrize("count", [0, 1, 250, 550, 600, 5_000])
def test_a_snapshot_holds_the_newest_ticks(count: int) -> None:
    ticks = channel(recent=600)
    batches = [one_batch(n) for n in (300, 500, 200)]
    for batch in batches:
        ticks.update(batch)
    every = np.concatenate([b.trade_id for b in batches]).tolist()
    stamps = np.concatenate([b.ts_event for b in batches]).tolist()
    snapshot = ticks.snapshot(count, reset=False)
    message = decoded(snapshot.payload)
    held = [int(t["trade_id"]) for t in message["ticks"]]
    wanted = min(count, 600)
    assert held == (every[-wanted:] if wanted else [])
    assert snapshot.seq == ticks.seq == 3
    assert snapshot.start_ns == (min(stamps[-wanted:]) if wanted else None)
