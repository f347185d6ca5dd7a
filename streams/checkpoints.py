"""Where stream processors keep their state between runs, and the processor loop's
durability hook that saves it (:class:`Checkpointed`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from streams.bus import Offsets
from streams.outage import OutageLog
from streams.processor import Durability, Round

log = logging.getLogger(__name__)


class CheckpointStore(Protocol):
    """Named blobs: the engine runner saves its engine's checkpoint under its group name."""

    async def load(self, name: str) -> bytes | None:
        """The newest blob saved under ``name``, or ``None``."""
        ...

    async def save(self, name: str, data: bytes) -> None:
        """Replace the blob under ``name``.

        Raises :class:`ConnectionError` when the store cannot be reached (nothing saved):
        the caller keeps running and tries again at its next checkpoint."""
        ...


class MemoryCheckpoints:
    """A :class:`CheckpointStore` in this process's memory (tests, throwaway runs)."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    async def load(self, name: str) -> bytes | None:
        return self._blobs.get(name)

    async def save(self, name: str, data: bytes) -> None:
        self._blobs[name] = data


class Checkpointed(Durability[None]):
    """The durability hook of a processor whose state is one blob (the candle engine):
    saved under ``name`` every ``every`` seconds and at the end, one save at a time, in the
    background, so a slow or absent store never holds the loop. A save covers the offsets
    read before its snapshot was taken (the outputs of those records are out: the hook runs
    after the publish); they are committed once it is stored. While the store is away the
    processor keeps running and commits nothing, told once by an :class:`OutageLog`.
    """

    def __init__(
        self, store: CheckpointStore, name: str, snapshot: Callable[[], bytes], every: float
    ) -> None:
        self.store = store
        self.name = name
        self.snapshot = snapshot
        self.every = every
        self._pending: dict[tuple[str, int], int] = {}
        self._saving: asyncio.Task[bool] | None = None
        self._covered: dict[tuple[str, int], int] = {}
        self._last = time.monotonic()
        self._outage = OutageLog(
            "checkpoint store",
            then="the engine keeps running; offsets are committed after the next checkpoint",
        )

    async def behind(self, round: Round[None]) -> Offsets:
        self._pending.update(round.offsets)
        offsets = await self._settle(wait=False)
        if self._saving is None and time.monotonic() - self._last >= self.every:
            self._save()
        return offsets

    async def finish(self, drained: bool) -> Offsets:
        offsets = await self._settle(wait=True)
        self._save()
        offsets.update(await self._settle(wait=True))
        return offsets

    def _save(self) -> None:
        """Start saving a snapshot of the state as it is now, covering what was read."""
        self._last = time.monotonic()
        self._covered = dict(self._pending)
        self._saving = asyncio.create_task(self._store(self.snapshot()), name="checkpoint")

    async def _store(self, data: bytes) -> bool:
        try:
            await self.store.save(self.name, data)
        except ConnectionError as exc:
            if line := self._outage.failed(time.monotonic(), str(exc)):
                log.warning(line)
            return False
        if line := self._outage.recovered(time.monotonic()):
            log.warning(line)
        return True

    async def _settle(self, *, wait: bool) -> dict[tuple[str, int], int]:
        """Once the save under way is done (``wait``: wait for it), what it covers; offsets
        read after its snapshot stay pending for the next one."""
        saving = self._saving
        if saving is None or not (wait or saving.done()):
            return {}
        self._saving = None
        covered, self._covered = self._covered, {}
        if not await saving:
            return {}
        for partition, offset in covered.items():
            if self._pending.get(partition) == offset:
                del self._pending[partition]
        return covered
