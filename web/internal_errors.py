"""The catch-all of every service's app: a failure no handler took becomes a 500 problem.

An exception that reaches :class:`InternalErrors` (a bug, or a database error that is not
the database being away) is logged with its traceback and the request's method and path,
and the client gets ``500 application/problem+json`` with our code ``internal-error`` and no
word of the exception. It is a middleware, not a Starlette handler for ``Exception``:
Starlette raises the exception again after such a handler answers, so uvicorn would log the
traceback a second time. When the answer has begun (a stream that fails part way), the
exception goes on to uvicorn, which logs it and closes the connection: a second head cannot
be sent.

A bug on a busy route must not flood the log with one traceback a request. The tracebacks
are limited per kind, a kind being the route's method and path template with the
exception's type (:class:`~telemetry.log_limits.RepeatWindows`): the first is logged in
full; the repeats within ``every`` seconds (60 by default) are counted only; once that
window has ended, a summary line says how many there were (at the next request, or before
the next traceback of that kind, which is logged in full again). Every client still gets its
``internal-error`` answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry.log_limits import RepeatWindows
from web.problems import internal_error

log = logging.getLogger(__name__)

TRACEBACK_EVERY_S: Final = 60.0
"""The window within which the repeats of a traceback are counted, not logged."""

Kind = tuple[str, str]
"""A failure's kind: its route (method and path template) and the exception's type."""


class InternalErrors:
    """ASGI middleware; the first of an app's (``Middleware(InternalErrors)``)."""

    def __init__(
        self,
        app: ASGIApp,
        every: float = TRACEBACK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._tracebacks: RepeatWindows[Kind] = RepeatWindows(every)
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for ended, count in self._tracebacks.ended(self._clock()):
            self._summarise(ended, count)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            kind = (f"{scope.get('method')} {_route_of(scope)}", type(exc).__name__)
            held = self._tracebacks.offer(kind, self._clock())
            if held:
                self._summarise(kind, held)
            if held is not None:
                log.exception("%s %r failed", scope.get("method"), scope.get("path"))
            await internal_error().response()(scope, receive, send)

    def _summarise(self, kind: Kind, held: int) -> None:
        route, error = kind
        log.error(
            "%s failed %d more %s with %s within %gs; their tracebacks were not logged",
            route, held, "time" if held == 1 else "times", error, self._tracebacks.every,
        )  # fmt: skip


UNROUTED: Final = "<unrouted>"
"""The route of a failure before any route took the request (a middleware's, say): one kind
for all of them, so that a scan of random paths cannot make each its own and log every
traceback (nor push the routes' kinds out of those remembered)."""


def _route_of(scope: Scope) -> str:
    """The path template of the route that took the request (``/v1/orders/{order_id}``),
    under its mounts; :data:`UNROUTED` when no route took it."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return UNROUTED
    return f"{scope.get('root_path', '')}{path}"
