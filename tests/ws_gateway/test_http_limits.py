"""The gateway's HTTP side (handshakes, ``/healthz``) is bounded: ``websockets`` reads at most
8 KiB a line and 128 headers, and the whole handshake must be done within ``open_timeout``.

These bounds are the library's, not ours: the tests are regression guards (they passed before
the gateway had any admission checks of its own), there to fail should a ``websockets``
upgrade or a change of server drop them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from .harness import TIMEOUT, client, recv_type, request, running

MEGABYTE = 1024 * 1024
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: gateway.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def resident_megabytes() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def stream(
    port: int, head: bytes, piece: bytes, most: int, pause: float = 0.0
) -> tuple[bytes, int]:
    """Send ``head``, then ``piece`` after ``piece`` (``most`` bytes at most) until answered
    or cut off; what the gateway answered, and how many bytes of pieces were sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(reader.read())
    sent = 0
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(head)
            while sent < most and not answer.done():
                writer.write(piece)
                await asyncio.wait_for(writer.drain(), TIMEOUT)
                await asyncio.sleep(pause)
                sent += len(piece)
        with contextlib.suppress(ConnectionError):
            return await asyncio.wait_for(answer, TIMEOUT), sent
        return b"", sent
    finally:
        writer.close()


async def test_oversized_handshake_headers_are_refused_with_431_and_memory_stays_flat() -> None:
    """A regression guard: ``websockets`` refuses a header line beyond 8 KiB by itself."""
    async with running() as (_, gateway):
        big, _ = await stream(gateway.port, UPGRADE + b"X-Big: ", b"a" * MEGABYTE, MEGABYTE)
        assert big.startswith(b"HTTP/1.1 431 ")
        before = resident_megabytes()
        for _ in range(8):
            _, sent = await stream(gateway.port, UPGRADE + b"X-Big: ", b"a" * 65536, 100 * MEGABYTE)
            assert sent < 16 * MEGABYTE
        assert resident_megabytes() - before < 50
        async with client(gateway) as ws:  # a normal client is still served
            await request(ws, op="ping", id=1)
            assert await recv_type(ws, "pong") == {"type": "pong", "id": 1}


async def test_a_handshake_dribbled_byte_by_byte_is_cut_off_after_the_open_timeout() -> None:
    async with running(open_timeout=1.0) as (_, gateway):
        started = time.monotonic()
        _, sent = await stream(gateway.port, b"GET /ws HTTP/1.1\r\n", b"X", 10_000, pause=0.05)
        assert sent < 200  # cut off after about 1 s of 20 bytes a second, not 10,000 bytes
        assert time.monotonic() - started > 0.9
        async with client(gateway) as ws:
            await request(ws, op="ping", id=1)
            assert await recv_type(ws, "pong") == {"type": "pong", "id": 1}
