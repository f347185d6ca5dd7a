"""Revocations at the edge: ``auth.events`` into HAProxy's map of revoked subjects, no reload.

:class:`RevokedSubjects` is the state, without I/O: the events that stop tokens (a key, a
session or an account revoked, ``docs/auth.md``) become entries ``subject -> until``, where
``until`` is when every token they concern has expired; an entry is dropped then. Its
:meth:`~RevokedSubjects.text` is the map file HAProxy reads when it starts or reloads.

:class:`RevocationFeed` is the shell: it reads ``auth.events`` from the bus on the one
processor loop (every edge in a group of its own, from the oldest retained event, so a new
edge learns what is still revoked), writes the map file first and then changes the running
HAProxy through its runtime API (``add map``, ``set map``, ``del map``). After a reload, or
when the runtime API could not be reached, :meth:`~RevocationFeed.sync` makes the running
map equal to the state again.
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

from core.auth_events import AuthEvent
from core.topics import AUTH_EVENTS
from edge.runtime import Runtime, RuntimeApiError
from streams.bus import Bus, BusClosedError, BusError, Offsets
from streams.processor import Batch, Durability, Outcome, Processor, Round

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
POLL_S: Final = 0.5
"""How long a round waits for events; entries whose time has come leave the map then."""
NS_PER_S: Final = 1_000_000_000


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
        self.in_sync = False
        """Whether the running map is known to equal the state."""
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
        """Follow ``auth.events`` for ever (cancel the task to stop): the one processor loop
        (``streams/processor.py``) with :meth:`step`, and HAProxy changed behind each round."""
        while True:
            events = Processor(
                self._bus,
                f"edge-{uuid.uuid4().hex}",
                [AUTH_EVENTS],
                self.step,
                _IntoHaproxy(self),
                start="earliest",
                poll_timeout=POLL_S,
                clock=lambda: int(self._clock() * NS_PER_S),
            )
            try:
                await events.run()
            except BusClosedError:
                log.info("the bus closed: the edge stops reading auth.events")
                return
            except BusError as exc:  # read again from the oldest: a repeat changes nothing
                log.warning("auth.events: cannot read (%s); retrying", exc)
                await asyncio.sleep(POLL_S)

    def step(self, batch: Batch, now_ns: int, caught_up: bool) -> Outcome[list[Change]]:
        """The events of one round into the state, and the entries whose time has come out:
        the map's changes (undecodable records the loop has logged change nothing)."""
        now = now_ns // NS_PER_S
        changes: list[Change] = []
        for message in batch.messages:
            if isinstance(message, AuthEvent) and (change := self.state.apply(message, now)):
                self.applied += 1
                changes.append(change)
        changes += self.state.expire(now)
        return Outcome([], changes)

    async def publish(self, changes: list[Change]) -> None:
        """The file first (a reload from now on reads it), then the running HAProxy."""
        async with self._lock:
            self._write()
            if not self.in_sync:
                await self._sync_locked()
                return
            try:
                for change in changes:
                    await self._push(change)
            except (RuntimeApiError, OSError) as exc:
                log.warning("auth.events: HAProxy not changed yet (%s); trying again", exc)
                self.in_sync = False

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
            self.in_sync = False
            return
        self.in_sync = True

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


class _IntoHaproxy(Durability[list[Change]]):
    """The feed's hook: a round's changes go into the map file and the running HAProxy (or,
    while HAProxy is out of step, the whole map again) before its offsets are committed."""

    def __init__(self, feed: RevocationFeed) -> None:
        self._feed = feed

    async def behind(self, round: Round[list[Change]]) -> Offsets:
        changes = round.outcome.effects
        if changes or not self._feed.in_sync:
            await self._feed.publish(changes)
        return round.offsets
