"""The trading process's watch over what keeps it serving: its long-running tasks (the
``md.ticks`` and ``trading.commands`` consumers, the outbox, the projector) and the soundness
of its service.

A task that ends while the process runs (an error, or a loop that returned), or a service
that must restart (``restart-required``: its venue went ahead of the store), is a failure:
it is logged once with its cause, :attr:`Watch.failure` names it (``/readyz``'s ``service``
check and ``/healthz`` answer 503 from then on), and ``on_failure`` is called (``mdp trading
serve`` stops then, and exits non-zero so that its supervisor restarts it: a restart resumes
every open saga from the store). Only the first failure is kept; the ones it causes are
logged as well. The outbox and the projector retry every failed round, so they end only when
their start fails: their failures are told by readiness checks of their own
(:data:`trading.followers.OUTBOX_CHECK`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

log = logging.getLogger(__name__)

CONSUMER_STOPPED: Final = "consumer-stopped"
"""The code of a failure where a task of the process ended."""


class ProcessFailed(Exception):  # noqa: N818 (what the process did, as its callers say it)
    """A part of the trading process failed while it ran (:attr:`Watch.failure`): it cannot
    serve until it is restarted."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the process cannot serve: a short ``code`` (``/readyz``) and the ``reason`` (the
    log and the exit message)."""

    code: str
    reason: str


class Watch:
    """The process's tasks, watched (see the module text)."""

    def __init__(self, on_failure: Callable[[], None] = lambda: None) -> None:
        self.failure: Failure | None = None
        self._on_failure = on_failure
        self._tasks: list[asyncio.Task[object]] = []
        self._closing = False

    def start(self, name: str, coro: Coroutine[Any, Any, object]) -> None:
        """Run ``coro`` as the task ``name``; it is meant to run until :meth:`close`."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self._tasks.append(task)

    def fail(self, code: str, reason: str) -> None:
        """Record a failure (the first one is kept) and tell ``on_failure``."""
        if self._closing:
            return
        log.error("the trading process cannot serve until it is restarted: %s", reason)
        if self.failure is None:
            self.failure = Failure(code, reason)
            self._on_failure()

    @property
    def code(self) -> str | None:
        """The first failure's code, ``None`` while every part runs."""
        return None if self.failure is None else self.failure.code

    def _ended(self, task: asyncio.Task[object]) -> None:
        if self._closing:
            return
        name = task.get_name()
        if task.cancelled():
            self.fail(CONSUMER_STOPPED, f"the {name} task was cancelled")
            return
        error = task.exception()
        if error is None:
            self.fail(CONSUMER_STOPPED, f"the {name} task ended")
            return
        log.error("the %s task failed", name, exc_info=error)
        self.fail(CONSUMER_STOPPED, f"the {name} task failed: {type(error).__name__}: {error}")

    async def close(self) -> None:
        """Stop watching (what ends now is the process stopping), then wait for every task
        (the caller has told them to stop)."""
        self._closing = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
