"""The history API's HTTP server refuses what no client needs to send: over-long targets,
oversized or endless heads, large bodies and trailers, heads and bodies dribbled a byte at a
time; and it answers pipelined requests in order, refusals included.

The memory checks run ``mdp api`` in a process of its own and read its resident size; the
others serve the same app within the test, or a stub app with a slow route and one that reads
its body (the server, its guard and the sockets are real either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from charting import ApiSettings, create_app
from machine import stop_process
from storage import PostgresReads
from web.guard import HttpLimits
from web.server import ApiServer, serving

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0
MEGABYTE = 1024 * 1024
GET = b"GET /v1/instruments HTTP/1.1\r\nHost: history.test\r\n"


@contextlib.asynccontextmanager
async def served(history: PostgresReads, **limits: float) -> AsyncIterator[ApiServer]:
    app = create_app(history, ApiSettings())
    async with serving(app, limits=HttpLimits(**limits)) as server:  # type: ignore[arg-type]
        yield server


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> tuple[int, dict[str, str]]:
    """Send ``parts`` (``pause`` seconds apart) until answered; the status and problem body
    of the answer (status 0: the server closed without one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(reader.read())
    try:
        with contextlib.suppress(ConnectionError):
            for part in parts:
                if answer.done():
                    break
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)
        received = await asyncio.wait_for(answer, TIMEOUT)
    finally:
        writer.close()
    if not received:
        return 0, {}
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"content-type: application/problem+json" in head.lower(), head
    return status, json.loads(body)


async def slow(request: Request) -> PlainTextResponse:
    await asyncio.sleep(float(request.query_params.get("seconds", "0.5")))
    return PlainTextResponse("slow")


async def fast(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


STUB = Starlette(
    routes=[Route("/slow", slow), Route("/", fast), Route("/echo", echo, methods=["POST"])]
)


@contextlib.asynccontextmanager
async def served_stub(**limits: float) -> AsyncIterator[ApiServer]:
    async with serving(STUB, limits=HttpLimits(**limits)) as server:  # type: ignore[arg-type]
        yield server


async def pipelined(port: int, requests: bytes) -> bytes:
    """Send ``requests`` in one write; all that arrives until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(requests)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()


def statuses(answers: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 ([0-9]{3}) ", answers)]


def problem_kind(body: dict[str, str]) -> str:
    return body["type"].rsplit("/", 1)[-1]


async def test_a_normal_request_is_served(history: PostgresReads) -> None:
    async with served(history) as server, httpx.AsyncClient() as client:
        answer = await client.get(f"{server.url}/v1/instruments", headers={"X-Trace": "a" * 4000})
        assert answer.status_code == 200


async def test_oversized_requests_get_our_problem_answers(history: PostgresReads) -> None:
    limits = HttpLimits()
    async with served(history) as server:
        long_target = b"GET /v1/candles?instrument=" + b"A" * 10_000 + b" HTTP/1.1\r\n\r\n"
        status, body = await exchange(server.port, long_target)
        assert (status, problem_kind(body)) == (414, "uri-too-long")
        assert f"at most {limits.max_target_bytes} bytes" in body["detail"]

        big_header = GET + b"X-Big: " + b"a" * MEGABYTE + b"\r\n\r\n"
        status, body = await exchange(server.port, big_header)
        assert (status, problem_kind(body)) == (431, "header-fields-too-large")
        assert f"at most {limits.max_head_bytes} bytes" in body["detail"]

        many = GET + b"".join(b"X-%d: 1\r\n" % n for n in range(limits.max_headers + 1)) + b"\r\n"
        status, body = await exchange(server.port, many)
        assert (status, problem_kind(body)) == (431, "header-fields-too-large")
        assert f"at most {limits.max_headers} header fields" in body["detail"]

        declared = b"POST /v1/instruments HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
        status, body = await exchange(server.port, declared % (limits.max_body_bytes + 1))
        assert (status, problem_kind(body)) == (413, "content-too-large")

        async with httpx.AsyncClient() as client:  # and the server still serves
            assert (await client.get(f"{server.url}/v1/instruments")).status_code == 200


CHUNKED = b"POST /echo HTTP/1.1\r\nHost: stub.test\r\nTransfer-Encoding: chunked\r\n\r\n"


async def test_a_chunked_body_beyond_the_bound_is_refused_with_413() -> None:
    limits = HttpLimits()
    async with served_stub() as server:
        chunk = b"%x\r\n%s\r\n" % (limits.max_body_bytes, b"a" * limits.max_body_bytes)
        status, body = await exchange(server.port, CHUNKED + chunk + chunk + b"0\r\n\r\n")
        assert (status, problem_kind(body)) == (413, "content-too-large")
        assert f"at most {limits.max_body_bytes} bytes" in body["detail"]
        async with httpx.AsyncClient() as client:  # a body within the bound is read whole
            answer = await client.post(f"{server.url}/echo", content=b"a" * 1000)
            assert answer.text == "1000"


async def test_endless_trailer_fields_are_cut_off_with_413() -> None:
    """Trailer fields come after the body, where the head's bound no longer applies: 50 MB of
    one were read whole before. Every raw byte of a request counts now."""
    limits = HttpLimits()
    async with served_stub() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        answer = asyncio.create_task(reader.read())
        sent = 0
        try:
            writer.write(CHUNKED + b"3\r\nabc\r\n0\r\nX-Trailer: ")
            with contextlib.suppress(ConnectionError):
                while sent < 50 * MEGABYTE and not answer.done():
                    writer.write(b"a" * 65536)
                    await asyncio.wait_for(writer.drain(), TIMEOUT)
                    await asyncio.sleep(0)
                    sent += 65536
            received = await asyncio.wait_for(answer, TIMEOUT)
        finally:
            writer.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), head
        whole = limits.max_head_bytes + limits.max_body_bytes
        assert (
            f"a whole request (chunk framing and trailer fields included) at most {whole}"
            in (json.loads(body)["detail"])
        )
        assert sent < 16 * MEGABYTE  # cut off long before its 50 MB


async def test_a_client_dribbling_its_head_is_cut_off_after_the_head_timeout(
    history: PostgresReads,
) -> None:
    async with served(history, head_timeout=1.0) as server:
        started = time.monotonic()
        dribble = [bytes([byte]) for byte in GET * 10]
        status, body = await exchange(server.port, *dribble, pause=0.05)
        assert (status, problem_kind(body)) == (408, "request-timeout")
        assert "must arrive within 1s" in body["detail"]
        assert time.monotonic() - started > 0.9

        started = time.monotonic()  # a connection that sends nothing is closed quietly
        assert await exchange(server.port) == (0, {})
        assert time.monotonic() - started > 0.9

        async with httpx.AsyncClient() as client:  # a prompt request has all the time it needs
            assert (await client.get(f"{server.url}/v1/instruments")).status_code == 200


async def test_a_body_dribbled_a_byte_at_a_time_is_cut_off_after_the_body_timeout() -> None:
    async with served_stub(body_timeout=1.0) as server:
        started = time.monotonic()
        head = b"POST /echo HTTP/1.1\r\nHost: stub.test\r\nContent-Length: 1000\r\n\r\n"
        status, body = await exchange(server.port, head, *[b"a"] * 1000, pause=0.1)
        assert (status, problem_kind(body)) == (408, "request-timeout")
        assert "the request body must arrive within 1s" in body["detail"]
        assert time.monotonic() - started > 0.9


# -- pipelining: each request against its own bounds, answers in order -----------------------


async def test_many_small_pipelined_requests_in_one_write_are_each_answered() -> None:
    """377 requests of 186 bytes in one 70 KB write were counted as one head: one 431."""
    request = b"GET / HTTP/1.1\r\nHost: stub.test\r\nX-Pad: " + b"p" * 150 + b"\r\n\r\n"
    count = 2 * HttpLimits().max_head_bytes // len(request)
    last = b"GET / HTTP/1.1\r\nHost: stub.test\r\nConnection: close\r\n\r\n"
    async with served_stub() as server:
        answers = await pipelined(server.port, request * count + last)
    assert statuses(answers) == [200] * (count + 1)


async def test_a_refusal_in_a_pipeline_is_answered_after_the_requests_before_it() -> None:
    """The 414 of the third request used to be written at once, as the first request's
    answer, and the server then failed writing the real one."""
    async with served_stub() as server:
        long_target = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: stub.test\r\n\r\n"
        requests = b"GET /slow HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n" + long_target
        answers = await pipelined(server.port, requests)
        assert statuses(answers) == [200, 200, 414]
        first, second, refusal = re.split(rb"(?=HTTP/1\.1 )", answers)[1:]
        assert first.endswith(b"\r\n\r\nslow")
        assert second.endswith(b"\r\n\r\nok")
        assert json.loads(refusal.partition(b"\r\n\r\n")[2])["status"] == 414


async def test_pipelined_requests_are_not_cut_off_by_the_head_timeout_while_answered() -> None:
    """The head timeout ran again while the second of two slow requests was being answered:
    a 408 in the middle of its answer."""
    async with served_stub(head_timeout=1.0) as server:
        one = b"GET /slow?seconds=1.5 HTTP/1.1\r\nHost: stub.test\r\n\r\n"
        answers = await pipelined(server.port, one * 2)
    assert statuses(answers) == [200, 200]
    assert answers.endswith(b"slow")


async def test_a_pipelined_body_has_its_time_from_when_its_turn_comes() -> None:
    """While an earlier request is answered the server reads nothing more, so the body of
    the next cannot arrive: its deadline starts when the server turns to it."""
    async with served_stub(body_timeout=1.0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(
                b"GET /slow?seconds=1.5 HTTP/1.1\r\nHost: stub.test\r\n\r\n"
                b"POST /echo HTTP/1.1\r\nHost: stub.test\r\nConnection: close\r\n"
                b"Content-Length: 10\r\n\r\nabcde"
            )
            await writer.drain()
            first = await asyncio.wait_for(reader.readuntil(b"slow"), TIMEOUT)
            writer.write(b"fghij")
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), TIMEOUT)
        finally:
            writer.close()
        assert statuses(first + rest) == [200, 200]
        assert rest.endswith(b"\r\n\r\n10")


# -- the command, in a process of its own ----------------------------------------------------


def resident_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def api_process(migrated_database: str) -> Iterator[tuple[int, int]]:
    """``mdp api`` on a free port: (its pid, its port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [
        sys.executable, "-m", "mdp.commands.api", "--database-url", migrated_database,
        "--port", str(port), "--log-level", "error",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "mdp api exited early"
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/instruments", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "mdp api did not answer within 30 s"
                time.sleep(0.1)
        yield process.pid, port
    finally:
        stop_process(process)


async def test_a_hundred_megabytes_of_header_bytes_are_cut_off_without_the_server_growing(
    api_process: tuple[int, int],
) -> None:
    pid, port = api_process
    before = resident_megabytes(pid)
    sent = 0
    for _ in range(8):  # eight such requests took 900 MB before
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = asyncio.create_task(reader.read())
        writer.write(GET + b"X-Big: ")
        piece = b"a" * (64 * 1024)
        streamed = 0
        with contextlib.suppress(ConnectionError):
            while streamed < 100 * MEGABYTE and not answer.done():
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), TIMEOUT)
                await asyncio.sleep(0)
                streamed += len(piece)
        writer.close()
        head = await asyncio.wait_for(answer, TIMEOUT)
        assert head.startswith(b"HTTP/1.1 431 "), head[:100]
        sent += streamed
    assert sent < 8 * 16 * MEGABYTE  # each was cut off long before its 100 MB
    async with httpx.AsyncClient() as client:
        normal = await client.get(f"http://127.0.0.1:{port}/v1/instruments")
        assert normal.status_code == 200
    assert resident_megabytes(pid) - before < 50
