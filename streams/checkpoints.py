"""Where stream processors keep their state between runs."""

from __future__ import annotations

from typing import Protocol


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
