"""Bounds on what an HTTP client may send the history API, at the protocol level.

uvicorn parses HTTP with httptools here (``web.server`` says why), and neither bounds
the request's head: httptools gathers a header value whole before handing it over, so one
100 MB header is 100 MB of memory, and uvicorn waits for a head or a body as long as the
client takes to send it (a client dribbling its headers a byte at a time holds the
connection for ever), its keep-alive timeout applying only between requests. An ASGI
middleware comes too late (the head is parsed before the app sees the request), and
uvicorn's h11 protocol, whose ``h11_max_incomplete_event_size`` bounds the head, has no such
timeout either, answers 400 rather than 431, and is slower. So
:class:`GuardedHttpToolsProtocol` is uvicorn's httptools protocol with these checks added;
each refusal is a problem+json answer, then the connection closes:

- the target (path and query) above ``max_target_bytes``: **414**;
- more than ``max_headers`` header fields (trailer fields of a chunked body included), or a
  head (request line and headers) above ``max_head_bytes``: **431**;
- a body above ``max_body_bytes`` (declared by ``Content-Length`` or counted as it
  arrives), or a whole request above ``max_head_bytes + max_body_bytes`` raw bytes (chunk
  framing, chunk extensions and trailer fields included): **413**;
- a head not complete within ``head_timeout`` seconds of the connection's start or of the
  previous response's end: **408** (a connection that sent nothing is closed quietly);
- a body not complete within ``body_timeout`` seconds of its head (or, for a pipelined
  request, of the moment its turn came): **408**, or a plain close when the app has already
  begun to answer it.

Raw bytes are counted per message, a slice of :data:`FEED_SLICE` bytes at a time: each read
is fed to the parser in such slices, and a slice that ends inside a message counts whole
towards that message. A message therefore holds at most one slice more than its bound in
memory, whatever the client streams, and a read holding many small pipelined requests counts
each against its own bound.

Pipelined requests are answered in order. A refusal is the answer to the refused request, so
while requests before it are still being answered, it waits: the server stops reading (what
arrives is discarded, and nothing after the refused request is parsed), answers the requests
before it, then the refusal. A refusal of a request whose answer the app has already begun
cannot be sent; that answer is cut short and the connection closed.

After a refusal the server stops sending and discards what still arrives for up to
:data:`LINGER` seconds before it closes (RFC 9112, section 9.6): closing at once, with the
client's bytes unread, would reset the connection and could destroy the answer before the
client reads it. Everything not bounded here is uvicorn's own behaviour.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from web.one_write import coalesce
from web.problems import PROBLEM_MEDIA_TYPE, ProblemError

LINGER: Final = 2.0
"""Seconds a refused connection is drained (its bytes discarded) before it is closed."""
FEED_SLICE: Final = 8 * 1024
"""Bytes fed to the parser at a time: the most a message is counted beyond its bound."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one request may hold and how long its head and body may take (see the module's
    doc).

    ``max_connections``: connections and requests in progress at once, beyond which uvicorn
    answers 503 (its ``limit_concurrency``); ``keep_alive``: seconds an idle connection is
    kept between requests (its ``timeout_keep_alive``).
    """

    max_target_bytes: int = 8 * 1024
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body_bytes: int = 64 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive: int = 5
    max_connections: int = 2048

    def __post_init__(self) -> None:
        sizes = (self.max_target_bytes, self.max_head_bytes, self.max_headers, self.max_body_bytes)
        if min(sizes) < 1 or self.max_connections < 1:
            raise ValueError("HTTP limits must be positive")
        if min(self.head_timeout, self.body_timeout, self.keep_alive) <= 0:
            raise ValueError("head_timeout, body_timeout and keep_alive must be positive")


class RefusedRequestError(Exception):
    """Raised inside a parser callback; the parser error it causes is answered with this."""

    def __init__(self, status: int, kind: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = ProblemError(status, kind, title, detail)

    def answer(self) -> bytes:
        """The whole HTTP answer: problem+json, closing the connection."""
        problem = self.problem
        body = msgspec.json.encode(problem.body())
        head = (
            f"HTTP/1.1 {problem.status} {problem.title}\r\n"
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        return head.encode("ascii") + body


class _Phase(enum.Enum):
    """Where the parser is in the connection's current message."""

    BETWEEN = enum.auto()  # no message begun since the last one ended
    HEAD = enum.auto()  # request line and headers
    BODY = enum.auto()  # the head is complete; the body (and any trailer fields) is not


_Deadline = Literal["head", "body"]


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within :attr:`limits` (a subclass sets them:
    :func:`guarded_protocol`)."""

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the message being parsed
        self._phase = _Phase.BETWEEN
        self._message_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._message_cycle: RequestResponseCycle | None = None
        # the request being answered (uvicorn's ``cycle`` is the last one parsed)
        self._serving: RequestResponseCycle | None = None
        # refusals: raised in a parser callback, then held until the answers before it end
        self._refusal: RefusedRequestError | None = None
        self._refused = False
        self._held: bytes | None = None
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: _Deadline | None = None

    # -- the connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._rearm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), FEED_SLICE):
            if self._refused or self.transport.is_closing():
                return  # refused: discarded, not parsed
            piece = view[start : start + FEED_SLICE]
            super().data_received(piece)  # type: ignore[arg-type]  # httptools takes buffers
            if self._phase is not _Phase.BETWEEN and not self._refused:
                self._message_bytes += len(piece)
                self._check_message_bytes()
        self._rearm()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error: ours when a check of ours raised it."""
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(refusal)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._serving = cycle
        coalesce(cycle)  # type: ignore[arg-type]  # uvicorn's cycle has the two members
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next pipelined request, if any
        if not self._refused:
            self._rearm()
        elif not self._busy():
            self._close_with(self._held)

    # -- the parser's callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _Phase.HEAD
        self._message_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._message_cycle = None

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_target_bytes:
            self._raise(
                414,
                "uri-too-long",
                "URI too long",
                f"the request target may have at most {self.limits.max_target_bytes} bytes",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._raise(
                431,
                "header-fields-too-large",
                "Request header fields too large",
                f"a request may have at most {self.limits.max_headers} header fields",
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._phase = _Phase.BODY
        if self._declared_length() > self.limits.max_body_bytes:
            self._raise(*self._too_large())
        super().on_headers_complete()
        self._message_cycle = self.cycle

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._raise(*self._too_large())
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _Phase.BETWEEN

    def _declared_length(self) -> int:
        """The body's ``Content-Length`` (0 when none: a chunked body is counted instead)."""
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                return int(value)
        return 0

    # -- bounds ----------------------------------------------------------------------------------

    def _check_message_bytes(self) -> None:
        limits = self.limits
        if self._phase is _Phase.HEAD and self._message_bytes > limits.max_head_bytes:
            self._refuse(
                RefusedRequestError(
                    431,
                    "header-fields-too-large",
                    "Request header fields too large",
                    f"the request line and headers may have at most {limits.max_head_bytes} bytes",
                )
            )
        elif self._message_bytes > limits.max_head_bytes + limits.max_body_bytes:  # in the body
            self._refuse(RefusedRequestError(*self._too_large()))

    def _too_large(self) -> tuple[int, str, str, str]:
        limits = self.limits
        return (
            413,
            "content-too-large",
            "Content too large",
            f"a request body may have at most {limits.max_body_bytes} bytes, and a whole"
            f" request (chunk framing and trailer fields included) at most"
            f" {limits.max_head_bytes + limits.max_body_bytes}",
        )

    # -- refusals --------------------------------------------------------------------------------

    def _raise(self, status: int, kind: str, title: str, detail: str) -> None:
        self._refusal = RefusedRequestError(status, kind, title, detail)
        raise self._refusal

    def _busy(self) -> bool:
        """Whether a request before the current one is still to be answered (or being so)."""
        serving = self._serving
        answering = serving is not None and not (serving.response_complete or serving.disconnected)
        return answering or bool(self.pipeline)

    def _refuse(self, refusal: RefusedRequestError) -> None:
        """Stop reading; answer ``refusal`` once the requests before the refused one are
        answered (at once when there are none), then drain and close."""
        self._refused = True
        self._cancel_timer()
        self.flow.pause_reading()
        answer: bytes | None = refusal.answer()
        own = self._message_cycle if self._phase is _Phase.BODY else None
        if own is not None and own is self._serving:  # the app has the request: take it back
            if own.response_started:
                answer = None  # its answer is under way: cut it short, nothing else fits
            own.disconnected = True  # its receive() now says so, and its send() does nothing
            own.message_event.set()
        elif own is not None and self.pipeline and self.pipeline[0][0] is own:
            self.pipeline.popleft()  # queued, never started: dropped
        self._held = answer
        if not self._busy():
            self._close_with(answer)

    def _close_with(self, answer: bytes | None) -> None:
        """Write ``answer`` (if any), then drain for :data:`LINGER` seconds and close."""
        if self._closing or self.transport.is_closing():
            return
        self._closing = True
        self._unset_keepalive_if_required()
        transport = self.transport
        if answer is not None:
            transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
            self.flow.resume_reading()  # drained: data_received discards
            self._timer = self.loop.call_later(LINGER, transport.close)
        else:
            transport.close()

    # -- deadlines -------------------------------------------------------------------------------

    def _rearm(self) -> None:
        """Run the deadline that applies now: the body's while the app waits for the body of
        the request it is answering; the head's while nothing is being answered and no
        head is complete; none while a response is under way."""
        if self._refused:
            return
        deadline: _Deadline | None = None
        if self._phase is _Phase.BODY:
            if self._message_cycle is not None and self._message_cycle is self._serving:
                deadline = "body"
        elif not self._busy():
            deadline = "head"
        if deadline == self._deadline:
            return  # a deadline runs from when it was first armed
        self._cancel_timer()
        if deadline is not None:
            seconds = self.limits.head_timeout if deadline == "head" else self.limits.body_timeout
            self._timer = self.loop.call_later(seconds, self._timed_out)
            self._deadline = deadline

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None

    def _timed_out(self) -> None:
        deadline, self._deadline, self._timer = self._deadline, None, None
        if self.transport.is_closing():
            return
        if self._phase is _Phase.BETWEEN:
            self.transport.close()  # nothing sent since the last answer
            return
        if deadline == "head":
            what = f"the request line and headers must arrive within {self.limits.head_timeout:g}s"
        else:
            what = f"the request body must arrive within {self.limits.body_timeout:g}s of its head"
        self._refuse(RefusedRequestError(408, "request-timeout", "Request timeout", what))


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, within ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
