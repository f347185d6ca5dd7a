"""The catch-all of every service's app: a failure no handler took becomes a 500 problem.

An exception that reaches :class:`InternalErrors` (a bug, or a database error that is not
the database being away) is logged once, with its traceback and the request's method and
path, and the client gets ``500 application/problem+json`` with our code
``internal-error`` and no word of the exception. It is a middleware, not a Starlette
handler for ``Exception``: Starlette raises the exception again after such a handler
answers, so uvicorn would log the traceback a second time. When the answer has begun (a
stream that fails part way), the exception goes on to uvicorn, which logs it and closes the
connection: a second head cannot be sent.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.problems import internal_error

log = logging.getLogger(__name__)


class InternalErrors:
    """ASGI middleware; the first of an app's (``Middleware(InternalErrors)``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:
                raise
            log.exception("%s %r failed", scope.get("method"), scope.get("path"))
            await internal_error().response()(scope, receive, send)
