"""Serve the app with uvicorn inside the caller's event loop (embedded platform, tests).

Unlike ``uvicorn.run``, :func:`serving` leaves the process's signal handlers alone (the
caller owns Ctrl-C) and tells the bound port, so ``port=0`` picks a free one. Both run
uvicorn's httptools protocol within :class:`~web.guard.HttpLimits` (bounded heads
and bodies, a deadline for the head, a cap on connections: :mod:`web.guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Generator
from typing import Any

import uvicorn
import uvloop
from starlette.types import ASGIApp

from certs.tls import TlsFiles
from telemetry.http import HttpMetrics, traced
from web.guard import HttpLimits, guarded_protocol


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    """A running server: its ``url`` (``http://host:port``) and ``port``."""

    def __init__(
        self, server: uvicorn.Server, task: asyncio.Task[None], host: str, *, tls: bool = False
    ) -> None:
        self._server = server
        self._task = task
        self.host = host
        self.scheme = "https" if tls else "http"

    @property
    def port(self) -> int:
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving: uvicorn's graceful shutdown. However that ends (an error, or a
        cancellation before uvicorn saw ``should_exit``: it looks every 0.1 s), its listening
        sockets and the connections it still holds are closed here, never left to the garbage
        collector (an unclosed socket's ``ResourceWarning``, from whatever test runs when it
        is collected)."""
        self._server.should_exit = True
        try:
            await self._task
        finally:
            for listener in getattr(self._server, "servers", ()):
                listener.close()  # asyncio's: stops accepting and closes its socket, once
            for connection in list(self._server.server_state.connections):
                connection.transport.close()  # none left after a graceful shutdown


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 30.0,
    log_level: str = "warning",
    limits: HttpLimits | None = None,
    tls: TlsFiles | None = None,
) -> AsyncIterator[ApiServer]:
    """Serve ``app`` on ``host:port`` for the ``async with`` block; stop it after.

    The socket is bound here, before uvicorn starts, so that an address in use raises
    :class:`OSError` (uvicorn itself would exit the process).
    """
    config = uvicorn_config(
        app, host, port, log_level, limits or HttpLimits(), tls, access_log=False
    )
    server = _Server(config)
    listening = socket.create_server((host, port), reuse_port=False)
    task = asyncio.create_task(server.serve(sockets=[listening]), name=f"http {host}:{port}")
    running = ApiServer(server, task, host, tls=tls is not None)
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError(f"the HTTP server on {host}:{port} did not start")
                await asyncio.sleep(0.01)
        yield running
    finally:
        try:
            await running.stop()
        finally:
            listening.close()  # also when uvicorn never took it (it did not start)


def uvicorn_config(
    app: ASGIApp,
    host: str,
    port: int,
    log_level: str,
    limits: HttpLimits,
    tls: TlsFiles | None = None,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's settings for the app: the guarded httptools protocol, no WebSockets (the
    gateway serves those), uvicorn's own bounds from ``limits``, and the app's requests
    counted (:class:`~telemetry.http.HttpMetrics`) and traced (:func:`~telemetry.http.traced`);
    with ``tls``, HTTPS with its context (:meth:`~certs.tls.TlsFiles.server_context`: a client
    certificate of its CA required)."""
    if tls is not None:
        options["ssl_context_factory"] = lambda _config, _default: tls.server_context()
    return uvicorn.Config(
        traced(HttpMetrics(app)),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        http=guarded_protocol(limits),
        ws="none",
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive,
        proxy_headers=False,  # uvicorn would trust X-Forwarded-For from any local client
        log_config=None,  # uvicorn's records go to the root: the one setup's (telemetry.logs)
        **options,
    )


def run_until_stopped(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    log_level: str = "info",
    limits: HttpLimits | None = None,
    tls: TlsFiles | None = None,
) -> bool:
    """Serve ``app`` in the foreground until SIGINT or SIGTERM, then stop gracefully.

    The event loop is uvloop's, and uvicorn parses HTTP with httptools (it takes it when
    installed, as here and in :func:`serving`): a 10,000-candle Arrow page from the database
    took 13.2 ms instead of 15.5 at p50, a kept one 0.9 instead of 1.3
    (``docs/history-api.md``).

    Returns whether the server started (False: it could not bind, or the app's startup
    failed, as uvicorn logged).
    """
    config = uvicorn_config(app, host, port, log_level, limits or HttpLimits(), tls)
    server = _Server(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _stop, server)
        await server.serve()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    return bool(server.started)


def _stop(server: uvicorn.Server) -> None:
    if server.should_exit:
        server.force_exit = True
    server.should_exit = True
