"""Revocations at the edge: ``auth.events`` into HAProxy's map of revoked subjects, no reload.

:class:`RevokedSubjects` is the state, without I/O: the events that stop tokens (a key, a
session or an account revoked, ``docs/auth.md``) become entries ``subject -> until``, where
``until`` is when every token they concern has expired; an entry is dropped then. Its
:meth:`~RevokedSubjects.text` is the map file HAProxy reads when it starts or reloads.

:class:`RevocationFeed` is the shell: it reads ``auth.events`` from the bus (every edge in a
group of its own, from the oldest retained event, so a new edge learns what is still revoked),
writes the map file first and then changes the running HAProxy through its runtime API
(``add map``, ``set map``, ``del map``). After a reload, or when the runtime API could not be
reached, :meth:`~RevocationFeed.sync` makes the running map equal to the state again.
HAProxy compares ``until`` with the time itself, so an entry that outlives its time refuses
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from core.auth_events import AuthEvent, decode_event
from core.codecs import CodecError
from core.topics import AUTH_EVENTS
from edge.runtime import Runtime, RuntimeApiError
from streams.bus import Bus, BusError

log = logging.getLogger(__name__)

REVOKING: Final = {
    "key-revoked": "key",
    "session-revoked": "session",
    "account-disabled": "account",
}
"""The events that stop tokens, and the kind of subject each names."""
SUBJECT: Final = re.compile(r"(key|session|account):[A-Za-z0-9_.-]{1,128}")
MAX_ENTRIES: Final = 100_000
"""Bounds the map (each entry lives a token's lifetime at most: minutes)."""
POLL_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Change:
    """One change of the running map: ``until`` None removes ``subject``."""

    subject: str
    until: int | None
    new: bool = False


class RevokedSubjects:
    """``subject -> until`` of every revocation still in force."""

    def __init__(self, entries: Mapping[str, int] | None = None) -> None:
        self._entries = dict(entries or {})

    @property
    def entries(self) -> dict[str, int]:
        return dict(self._entries)

    def apply(self, event: AuthEvent, now: int) -> Change | None:
        """The change ``event`` makes, if any (an event repeated or past its time makes none)."""
        kind = REVOKING.get(event.kind)
        if kind is None or event.until <= now:
            return None
        if not SUBJECT.fullmatch(event.subject) or event.subject.split(":")[0] != kind:
            log.warning("auth.events: ignored %s of a malformed subject", event.kind)
            return None
        known = self._entries.get(event.subject)
        if known is not None and known >= event.until:
            return None
        if known is None and len(self._entries) >= MAX_ENTRIES:
            log.warning("auth.events: %d revocations in force, %s ignored", MAX_ENTRIES, event.kind)
            return None
        self._entries[event.subject] = event.until
        return Change(event.subject, event.until, new=known is None)

    def expire(self, now: int) -> list[Change]:
        """Drop the entries whose time has come."""
        over = [subject for subject, until in self._entries.items() if until <= now]
        for subject in over:
            del self._entries[subject]
        return [Change(subject, None) for subject in over]

    def next_expiry(self) -> int | None:
        return min(self._entries.values(), default=None)

    def text(self) -> str:
        """The map file: ``<subject> <until>`` per line."""
        return "".join(f"{subject} {until}\n" for subject, until in sorted(self._entries.items()))

    @classmethod
    def parse(cls, text: str, now: int) -> RevokedSubjects:
        """The entries of a map file still in force (lines that are not entries are skipped)."""
        entries: dict[str, int] = {}
        for line in text.splitlines()[:MAX_ENTRIES]:
            fields = line.split()
            entry = len(fields) == 2 and SUBJECT.fullmatch(fields[0]) and fields[1].isdigit()
            if entry and int(fields[1]) > now:
                entries[fields[0]] = int(fields[1])
        return cls(entries)


class RevocationFeed:
    """``auth.events`` on ``bus`` into the map file ``map_file`` of the HAProxy at ``runtime``."""

    def __init__(
        self,
        bus: Bus,
        runtime: Runtime,
        map_file: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._runtime = runtime
        self._file = map_file
        self._clock = clock
        self._lock = asyncio.Lock()
        self._in_sync = False
        try:
            saved = map_file.read_text()
        except FileNotFoundError:
            saved = ""
        self.state = RevokedSubjects.parse(saved, self._now())
        self.applied = 0
        """Events that changed the map (for tests and metrics)."""

    def _now(self) -> int:
        return int(self._clock())

    async def run(self) -> None:
        """Follow ``auth.events`` for ever (cancel the task to stop)."""
        group = f"edge-{uuid.uuid4().hex}"
        async with self._bus.subscribe(group, [AUTH_EVENTS], start="earliest") as subscription:
            while True:
                try:
                    records = await subscription.poll(500, self._wait())
                except BusError as exc:
                    log.warning("auth.events: cannot read (%s); retrying", exc)
                    await asyncio.sleep(POLL_S)
                    continue
                changes = [change for record in records if (change := self._apply(record.value))]
                changes += self.state.expire(self._now())
                if changes or not self._in_sync:
                    await self._publish(changes)

    def _wait(self) -> float:
        expiry = self.state.next_expiry()
        if expiry is None:
            return POLL_S
        return min(POLL_S, max(0.0, expiry - self._clock()))

    def _apply(self, value: bytes) -> Change | None:
        try:
            event = decode_event(value)
        except CodecError:
            log.warning("auth.events: ignored a record that is not an event")
            return None
        change = self.state.apply(event, self._now())
        if change is not None:
            self.applied += 1
        return change

    async def _publish(self, changes: list[Change]) -> None:
        """The file first (a reload from now on reads it), then the running HAProxy."""
        async with self._lock:
            self._write()
            if not self._in_sync:
                await self._sync_locked()
                return
            try:
                for change in changes:
                    await self._push(change)
            except (RuntimeApiError, OSError) as exc:
                log.warning("auth.events: HAProxy not changed yet (%s); trying again", exc)
                self._in_sync = False

    async def sync(self) -> None:
        """Make the running map equal to the state (after a reload, or a failed change)."""
        async with self._lock:
            await self._sync_locked()

    async def _sync_locked(self) -> None:
        try:
            running = await self._runtime.show_map(self._file)
            wanted = {subject: str(until) for subject, until in self.state.entries.items()}
            for subject in running.keys() - wanted.keys():
                await self._runtime.del_map(self._file, subject)
            for subject, until in wanted.items():
                if subject not in running:
                    await self._runtime.add_map(self._file, subject, until)
                elif running[subject] != until:
                    await self._runtime.set_map(self._file, subject, until)
        except (RuntimeApiError, OSError) as exc:
            log.warning("auth.events: HAProxy not changed yet (%s); trying again", exc)
            self._in_sync = False
            return
        self._in_sync = True

    async def _push(self, change: Change) -> None:
        if change.until is None:
            await self._runtime.del_map(self._file, change.subject)
        elif change.new:
            await self._runtime.add_map(self._file, change.subject, str(change.until))
        else:
            await self._runtime.set_map(self._file, change.subject, str(change.until))

    def _write(self) -> None:
        partial = self._file.with_name(f".{self._file.name}.new")
        partial.write_text(self.state.text())
        os.replace(partial, self._file)
