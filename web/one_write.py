"""A response whose body comes in one piece leaves the server in one write.

uvicorn writes a response's head as soon as the app sends ``http.response.start`` and its
body on ``http.response.body``: two writes, two packets, and a gap between them. A server
killed (or preempted, then killed) in that gap leaves a proxy holding a head without a body,
which it can neither complete nor retry on another server, so the client's request fails even
with a healthy instance beside the dead one (``tests/edge/test_edge.py``). Holding the head
until the body arrives closes that gap for every response of one body message (all of the
history API's, except streamed ones) and saves a system call and a packet per response.

:func:`coalesce` wraps a request cycle's ``send``: the head waits; a final body sends the
head and the body through the cycle as usual, the head's write held back to go out with the
body's; a streamed body (``more_body``) or an answer to ``HEAD`` sends the head first, as
before. A head that is never
followed by a body is never sent, so uvicorn answers 500 for an app that stopped half-way,
instead of leaving a head without a body on the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class Cycle(Protocol):
    """What :func:`coalesce` needs of uvicorn's request cycle."""

    transport: asyncio.Transport
    scope: MutableMapping[str, Any]
    send: Send


class _HeadHeld:
    """Stands in for the transport while one response is written: the first write (the
    head) waits and goes out with the second (the body) in one write, at the moment uvicorn
    writes the body, so before it ends the response (and before anything the server writes
    after that, such as a refusal held for a pipelined request)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._wrote = False

    def write(self, data: bytes) -> None:
        if not self._wrote and self._head is None:
            self._head = data
            return
        head, self._head, self._wrote = self._head or b"", None, True
        self._transport.write(head + data)

    def flush(self) -> None:
        """Write a head that no body followed (a client gone, a write refused)."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalesce(cycle: Cycle) -> None:
    """Make ``cycle`` write a one-piece response's head and body together (see the module).

    Once the response's last body is sent, the cycle gets its own ``send`` back: the wrapper
    holds the cycle, so while the cycle holds the wrapper the two are a reference cycle, which
    only the garbage collector frees. Undone, each request's cycle is freed as soon as the
    next request's replaces it. Left, they were 16 objects of cyclic garbage a request, the
    only ones of a cached ``/v1/candles`` page: a collection every 40-odd requests, and one of
    the middle generation (5,000 objects, 1-10 ms on the shared machine) every 400-odd
    (docs/benchmarks.md, "The history API's own tail")."""
    send = cycle.send
    held: Message | None = None

    async def coalescing(message: Message) -> None:
        nonlocal held
        kind = message["type"]
        if kind == "http.response.start":
            held = message  # a later start (uvicorn's 500 after a failure) replaces it
            return
        try:
            if held is None:
                await send(message)
                return
            head, held = held, None
            if (
                kind != "http.response.body"
                or message.get("more_body", False)
                or cycle.scope["method"] == "HEAD"  # no body is written: nothing to join
            ):
                await send(head)
                await send(message)
                return
            await _send_joined(cycle, send, head, message)
        finally:
            if kind == "http.response.body" and not message.get("more_body", False):
                vars(cycle).pop("send", None)  # the response is over: see the docstring

    cycle.send = coalescing


async def _send_joined(cycle: Cycle, send: Send, head: Message, body: Message) -> None:
    """Send ``head`` and ``body`` through the cycle's own ``send`` in one write."""
    transport = cycle.transport
    held_head = _HeadHeld(transport)
    cycle.transport = held_head  # type: ignore[assignment]
    try:
        await send(head)
        await send(body)
    finally:
        cycle.transport = transport
        held_head.flush()
