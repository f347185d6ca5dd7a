"""The fake venue server does what its faults say: the end-to-end tests rely on it."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.ingest.venues.fakes.server import FakeVenue, Faults, malformed

WAIT = 5.0


class ListScript:
    """Frames ``f0``, ``f1``, ...; a snapshot names the resume point; ``ping`` gets ``pong``."""

    def __init__(self, count: int) -> None:
        self._frames = [f"f{i}" for i in range(count)]

    def frames(self) -> list[str]:
        return list(self._frames)

    def replies(self, client_frame: str) -> list[str]:
        return ["pong"] if client_frame == "ping" else [f"ack {client_frame}"]

    def snapshot(self, sent: int) -> list[str]:
        return [f"snapshot@{sent}"]


async def read_all(ws: ClientConnection, until: str | None = None) -> list[str]:
    """Frames until the connection ends (or ``until`` arrives)."""
    received: list[str] = []
    try:
        while True:
            frame = str(await asyncio.wait_for(ws.recv(), WAIT))
            received.append(frame)
            if frame == until:
                return received
    except ConnectionClosed:
        return received


async def session(venue: FakeVenue, until: str | None = None) -> list[str]:
    async with connect(venue.url, proxy=None) as ws:
        await ws.send("subscribe")
        return await read_all(ws, until)


async def test_a_clean_replay_sends_the_answer_the_snapshot_and_every_frame() -> None:
    async with FakeVenue(ListScript(3)) as venue:
        assert await session(venue, until="f2") == ["ack subscribe", "snapshot@0", "f0", "f1", "f2"]
        assert venue.finished.is_set()


async def test_after_a_drop_the_replay_resumes_where_the_client_left_it() -> None:
    async with FakeVenue(ListScript(5), Faults(drop_after={1})) as venue:
        first = await session(venue)
        second = await session(venue, until="f4")
    assert first == ["ack subscribe", "snapshot@0", "f0", "f1"]
    assert second == ["ack subscribe", "snapshot@2", "f2", "f3", "f4"]
    assert venue.connections == 2


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(repeat={1}), ["f0", "f1", "f1", "f2", "f3"]),
        (Faults(swap={1}), ["f0", "f2", "f1", "f3"]),
        (Faults(skip={2}), ["f0", "f1", "f3"]),
        (Faults(malformed_before={2}), ["f0", "f1", malformed("f2"), "f2", "f3"]),
    ],
)
async def test_each_fault_changes_the_replay_as_it_says(
    faults: Faults, expected: list[str]
) -> None:
    async with FakeVenue(ListScript(4), faults) as venue:
        assert (await session(venue, until="f3"))[2:] == expected


async def test_a_stalled_venue_sends_nothing_more_until_the_client_gives_up() -> None:
    async with FakeVenue(ListScript(4), Faults(stall_after={0})) as venue:
        async with connect(venue.url, proxy=None) as ws:
            await ws.send("subscribe")
            assert [str(await ws.recv()) for _ in range(3)] == ["ack subscribe", "snapshot@0", "f0"]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            await ws.send("ping")
            assert await ws.recv() == "pong"  # still answering: only the stream is silent
        assert await session(venue, until="f3") == ["ack subscribe", "snapshot@1", "f1", "f2", "f3"]


async def test_without_subscribe_first_the_stream_starts_on_connecting() -> None:
    async with (
        FakeVenue(ListScript(2), subscribe_first=False) as venue,
        connect(venue.url, proxy=None) as ws,
    ):
        assert await read_all(ws, until="f1") == ["snapshot@0", "f0", "f1"]
