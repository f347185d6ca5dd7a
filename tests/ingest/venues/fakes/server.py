"""A fake venue: a WebSocket server on 127.0.0.1 replaying a venue script, with faults.

A :class:`VenueScript` says what the venue sends (its live frames, its answers, its snapshot
on subscribing); :class:`Faults` says what goes wrong; :class:`FakeVenue` serves one client
at a time. It remembers how far the replay got, so that after a reconnect the stream resumes
where the client left it (the venue's own buffering), preceded by the script's snapshot.
Every fault fires once, so the replay after it runs clean.

    async with FakeVenue(KrakenScript.from_file(path), Faults(drop_after={10})) as venue:
        feed = VenueFeed(KrakenSpot(), ["BTC/USDT"], VenueSettings(url=venue.url))
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

FLUSH_TIMEOUT = 5.0
"""How long a drop waits for the client to have read what was sent before it (seconds)."""


class VenueScript(Protocol):
    """What one venue sends; implemented per venue in ``fakes/<venue>.py``."""

    def frames(self) -> list[str]:
        """The replay: the venue's live frames in order."""
        ...

    def replies(self, client_frame: str) -> list[str]:
        """Answers to a frame the client sent (subscribe, ping)."""
        ...

    def snapshot(self, sent: int) -> list[str]:
        """What a (re)subscription gets before the live stream resumes at frame ``sent``
        (Kraken: a snapshot of recent trades; others: nothing)."""
        ...


@dataclass(frozen=True, slots=True)
class Faults:
    """Frame indexes (into ``script.frames()``) at which something goes wrong, once each.

    - ``drop_after``: the connection breaks right after frame ``i`` (no closing handshake;
      the client has read everything up to ``i``);
    - ``stall_after``: after frame ``i`` the venue goes silent, connection open, until the
      client gives up on it;
    - ``repeat``: frame ``i`` is sent twice;
    - ``swap``: frames ``i`` and ``i + 1`` are sent in the opposite order;
    - ``skip``: frame ``i`` is never sent (the venue skipped it);
    - ``malformed_before``: a broken frame (frame ``i`` cut in half) comes before frame ``i``.
    """

    drop_after: AbstractSet[int] = field(default_factory=frozenset)
    stall_after: AbstractSet[int] = field(default_factory=frozenset)
    repeat: AbstractSet[int] = field(default_factory=frozenset)
    swap: AbstractSet[int] = field(default_factory=frozenset)
    skip: AbstractSet[int] = field(default_factory=frozenset)
    malformed_before: AbstractSet[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:  # any set of ints in, frozen sets kept
            object.__setattr__(self, name, frozenset(getattr(self, name)))


def malformed(frame: str) -> str:
    """A frame cut in half: looks like the venue's, is not JSON."""
    return frame[: max(1, len(frame) // 2)]


class FakeVenue:
    """Serves ``script`` with ``faults`` on ``ws://127.0.0.1:<free port>``.

    ``subscribe_first``: the stream starts once the client's first frame has been answered
    (venues subscribed by a message); ``False`` starts it on connecting (venues subscribed by
    the URL). ``keepalive``: a frame sent every ``keepalive_every`` seconds once the replay is
    over (a venue's heartbeat), so that an idle feed is not taken for a dead one.
    ``connections`` counts the clients served, ``position`` is the next frame of the replay,
    ``finished`` is set once the last one was sent.
    """

    def __init__(
        self,
        script: VenueScript,
        faults: Faults | None = None,
        *,
        subscribe_first: bool = True,
        keepalive: str | None = None,
        keepalive_every: float = 0.1,
    ) -> None:
        self.script = script
        self.faults = faults or Faults()
        self.subscribe_first = subscribe_first
        self.keepalive = keepalive
        self.keepalive_every = keepalive_every
        self.frames = script.frames()
        self.position = 0
        self.connections = 0
        self.client_frames: list[str] = []
        self.finished = asyncio.Event()
        self._fired: set[tuple[str, int]] = set()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake venue is not serving"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def __aenter__(self) -> Self:
        self._server = await serve(self._serve, "127.0.0.1", 0, ping_interval=None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close(close_connections=True)
        await self._server.wait_closed()

    # -- one client ------------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        answering: asyncio.Task[None] | None = None
        try:
            if self.subscribe_first:
                await self._answer(ws, str(await ws.recv()))
            answering = asyncio.create_task(self._answer_all(ws))
            for frame in self.script.snapshot(self.position):
                await ws.send(frame)
            if await self._replay(ws):
                await self._idle(ws)
        except ConnectionClosed:
            pass
        finally:
            if answering is not None:
                answering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await answering

    async def _answer(self, ws: ServerConnection, frame: str) -> None:
        self.client_frames.append(frame)
        for reply in self.script.replies(frame):
            await ws.send(reply)

    async def _answer_all(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                await self._answer(ws, str(frame))

    def _once(self, fault: str, index: int, indexes: AbstractSet[int]) -> bool:
        """Whether ``fault`` applies at ``index`` now (and mark it fired)."""
        if index not in indexes or (fault, index) in self._fired:
            return False
        self._fired.add((fault, index))
        return True

    async def _idle(self, ws: ServerConnection) -> None:
        """After the replay: heartbeats if the venue has them, else silence, until closed."""
        if self.keepalive is None:
            await ws.wait_closed()
            return
        while True:
            await ws.send(self.keepalive)
            await asyncio.sleep(self.keepalive_every)

    async def _replay(self, ws: ServerConnection) -> bool:
        """Send the replay from ``position`` on; whether it got to the end on this client."""
        faults, frames = self.faults, self.frames
        while self.position < len(frames):
            i = self.position
            if self._once("malformed", i, faults.malformed_before):
                await ws.send(malformed(frames[i]))
            if self._once("skip", i, faults.skip):
                self.position = i + 1
                continue
            if i + 1 < len(frames) and self._once("swap", i, faults.swap):
                await ws.send(frames[i + 1])
                await ws.send(frames[i])
                sent: tuple[int, ...] = (i, i + 1)
            else:
                await ws.send(frames[i])
                if self._once("repeat", i, faults.repeat):
                    await ws.send(frames[i])
                sent = (i,)
            self.position = sent[-1] + 1
            if any(self._once("drop", j, faults.drop_after) for j in sent):
                await self._drop(ws)
                return False
            if any(self._once("stall", j, faults.stall_after) for j in sent):
                await ws.wait_closed()
                return False
        self.finished.set()
        return True

    async def _drop(self, ws: ServerConnection) -> None:
        """Break the connection once the client has read what was sent (a ping answered
        after the frames proves it), so that the replay resumes exactly where it stopped."""
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            pong = await ws.ping()
            await asyncio.wait_for(pong, FLUSH_TIMEOUT)
        ws.transport.abort()
