"""Bounds on what an HTTP client may send the history API, at the protocol level.

uvicorn parses HTTP with httptools here (``charting.server`` says why), and neither bounds
the request's head: httptools gathers a header value whole before handing it over, so one
100 MB header is 100 MB of memory, and uvicorn waits for a head as long as the client takes
to send it (a client dribbling its headers a byte at a time holds the connection for ever),
its keep-alive timeout applying only between requests. An ASGI middleware comes too late
(the head is parsed before the app sees the request), and uvicorn's h11 protocol, whose
``h11_max_incomplete_event_size`` bounds the head, has no such timeout either, answers 400
rather than 431, and is slower. So :class:`GuardedHttpToolsProtocol` is uvicorn's httptools
protocol with these checks added; each refusal is a problem+json answer, then the connection
closes:

- the target (path and query) above ``max_target_bytes``: **414**;
- more than ``max_headers`` header fields, or a head (request line and headers) above
  ``max_head_bytes``: **431**. Bytes are counted as they arrive, so memory stays within one
  read of the bound whatever the client streams;
- a body above ``max_body_bytes`` (declared by ``Content-Length`` or counted as it
  arrives): **413**;
- a head not complete within ``head_timeout`` seconds of the connection's start or of the
  previous response's end: **408** (a connection that sent nothing is closed quietly).

After a refusal the server stops sending and discards what still arrives for up to
:data:`LINGER` seconds before it closes (RFC 9112, section 9.6): closing at once, with the
client's bytes unread, would reset the connection and could destroy the answer before the
client reads it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from charting.problems import PROBLEM_MEDIA_TYPE, ProblemError

LINGER: Final = 2.0
"""Seconds a refused connection is drained (its bytes discarded) before it is closed."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one request may hold and how long its head may take (see the module's doc).

    ``max_connections``: connections and requests in progress at once, beyond which uvicorn
    answers 503 (its ``limit_concurrency``); ``keep_alive``: seconds an idle connection is
    kept between requests (its ``timeout_keep_alive``).
    """

    max_target_bytes: int = 8 * 1024
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body_bytes: int = 64 * 1024
    head_timeout: float = 10.0
    keep_alive: int = 5
    max_connections: int = 2048

    def __post_init__(self) -> None:
        sizes = (self.max_target_bytes, self.max_head_bytes, self.max_headers, self.max_body_bytes)
        if min(sizes) < 1 or self.max_connections < 1:
            raise ValueError("HTTP limits must be positive")
        if self.head_timeout <= 0 or self.keep_alive <= 0:
            raise ValueError("head_timeout and keep_alive must be positive")


class RefusedRequestError(Exception):
    """Raised inside a parser callback; the parser error it causes is answered with this."""

    def __init__(self, status: int, kind: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = ProblemError(status, kind, title, detail)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol within :attr:`limits` (a subclass sets them:
    :func:`guarded_protocol`)."""

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._body_bytes = 0
        self._refusal: RefusedRequestError | None = None
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None

    # -- the connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered: drained, not parsed
        super().data_received(data)
        if self._in_head and not self._refused and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(self._head_too_large())

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error: ours when a check of ours raised it."""
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(refusal)

    # -- the parser's callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._body_bytes = 0

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
        self._in_head = False
        self._head_bytes = 0
        self._disarm_timer()
        if self._declared_length() > self.limits.max_body_bytes:
            self._raise(*self._body_too_large())
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._raise(*self._body_too_large())
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_head and not self._refused and not self.transport.is_closing():
            self._arm_head_timer()

    def _declared_length(self) -> int:
        """The body's ``Content-Length`` (0 when none: a chunked body is counted instead)."""
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                return int(value)
        return 0

    # -- refusals --------------------------------------------------------------------------------

    def _raise(self, status: int, kind: str, title: str, detail: str) -> None:
        self._refusal = RefusedRequestError(status, kind, title, detail)
        raise self._refusal

    def _head_too_large(self) -> RefusedRequestError:
        return RefusedRequestError(
            431,
            "header-fields-too-large",
            "Request header fields too large",
            f"the request line and headers may have at most {self.limits.max_head_bytes} bytes",
        )

    def _body_too_large(self) -> tuple[int, str, str, str]:
        return (
            413,
            "content-too-large",
            "Content too large",
            f"a request body may have at most {self.limits.max_body_bytes} bytes",
        )

    def _refuse(self, refusal: RefusedRequestError) -> None:
        """Answer ``refusal``, then drain the connection for :data:`LINGER` seconds and close."""
        self._disarm_timer()
        self._refused = True
        problem = refusal.problem
        body = msgspec.json.encode(problem.body())
        head = (
            f"HTTP/1.1 {problem.status} {problem.title}\r\n"
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        transport = self.transport
        transport.write(head.encode("ascii") + body)
        if transport.can_write_eof():
            transport.write_eof()
            self._timer = self.loop.call_later(LINGER, transport.close)
        else:
            transport.close()

    # -- the head's deadline ---------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._disarm_timer()
        self._timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()
            return
        self._refuse(
            RefusedRequestError(
                408,
                "request-timeout",
                "Request timeout",
                f"the request line and headers must arrive within {self.limits.head_timeout:g}s",
            )
        )


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, within ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
