"""``mdp edge``: HAProxy in front of running services, reloaded on SIGHUP, stopped on SIGTERM
with its HAProxy; HAProxy does not outlive the command killed with -9; the keys outlive an auth
outage, and a key set fetch that hangs holds neither a reload nor a stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge.haproxy import LEASH_GRACE_S
from machine import reserved_port, stop_process
from tests.support.children import child, kill_9
from web.server import serving

from .conftest import TIMEOUT, Stack, eventually

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
"""The command imports every command's modules first: seconds on a busy machine."""


@contextlib.asynccontextmanager
async def edge_command(
    stack: Stack, tmp_path: Path, *options: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    """``mdp edge`` in front of the stack's API and gateway, started; yields it and its URL."""
    # HAProxy binds both beside the test's holders, which keep them from everyone else
    with reserved_port() as port, reserved_port() as admin:
        command = [
            sys.executable, "-m", "mdp.cli", "edge", "--port", str(port),
            "--metrics-port", str(admin), "--api", f"127.0.0.1:{stack.api_port}",
            "--gateway", f"127.0.0.1:{stack.gateway.port}",
            *options,
        ]  # fmt: skip
        environment = os.environ | {"XDG_STATE_HOME": str(tmp_path / "state")} | (env or {})
        with child(command, cwd=REPO, env=environment, stderr=subprocess.PIPE) as process:
            listening = f"mdp edge: listening on http://127.0.0.1:{port}"
            await line_starting(process, listening, STARTUP_TIMEOUT)
            yield process, f"http://127.0.0.1:{port}"


async def line_starting(
    process: subprocess.Popen[str], prefix: str, timeout: float = TIMEOUT
) -> str:
    """The next line of the command's stderr that starts with ``prefix`` (others skipped)."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(asyncio.to_thread(process.stderr.readline), timeout)
        if line.startswith(prefix):
            return line.strip()
        assert line, f"the command ended before printing {prefix!r}"
    raise AssertionError(f"no line {prefix!r} in time")


def children(pid: int, name: str) -> list[int]:
    """The processes named ``name`` whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if text[text.index("(") + 1 : text.rindex(")")] == name and int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it has ended)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


async def refused_connection(url: str) -> bool:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        try:
            await client.get(url + "/v1/instruments")
        except httpx.TransportError:
            return True
    return False


async def test_the_command_routes_reloads_and_stops(stack: Stack, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    async with edge_command(stack, tmp_path, "--keys", str(keys)) as (process, url):
        metrics = await line_starting(process, "metrics: ")
        assert metrics.startswith("metrics: http://127.0.0.1:")
        assert metrics.endswith("/metrics")
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as edge:
            assert (await edge.get("/v1/instruments")).status_code == 200
            # a key that is not a key: the reload is refused and the edge keeps serving
            (keys / "k1.pem").write_text("not a key\n")
            process.send_signal(signal.SIGHUP)
            refused = await line_starting(process, "mdp edge: error: ")
            assert refused.startswith("mdp edge: error: not reloaded, still serving as before")
            assert (await edge.get("/v1/instruments")).status_code == 200
            (keys / "k1.pem").unlink()
            process.send_signal(signal.SIGHUP)
            assert await line_starting(process, "mdp edge: ") == "mdp edge: reloaded"
            assert await asyncio.to_thread(stop_process, process) == 0
            await eventually(lambda: refused_connection(url))


def test_the_command_refuses_a_missing_key_folder(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mdp.cli", "edge", "--api", "127.0.0.1:1", "--gateway",
         "127.0.0.1:2", "--keys", str(tmp_path / "none")],
        cwd=REPO, capture_output=True, text=True, check=False,
        env=os.environ | {"XDG_STATE_HOME": str(tmp_path / "state")},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == f"mdp edge: error: --keys {tmp_path / 'none'}: no such folder"


async def test_haproxy_does_not_outlive_the_command_killed_with_sigkill(
    stack: Stack, tmp_path: Path
) -> None:
    async with edge_command(stack, tmp_path) as (process, url):
        [master] = children(process.pid, "haproxy")
        workers = children(master, "haproxy")
        assert workers
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            assert (await client.get(url + "/v1/instruments")).status_code == 200
        kill_9(process)

        def all_gone() -> bool:
            return not any(alive(pid) for pid in (master, *workers))

        await eventually(all_gone, timeout=LEASH_GRACE_S + 5)
        assert await refused_connection(url)


def hanging_key_set() -> tuple[Starlette, asyncio.Event]:
    """A key set URL that answers once, then hangs until the event is set."""
    document = b'{"keys": []}'
    release = asyncio.Event()
    calls = 0

    async def jwks(request: Request) -> Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            await release.wait()
        return Response(document, media_type="application/json")

    return Starlette(routes=[Route("/jwks", jwks)]), release


@contextlib.asynccontextmanager
async def release_at_the_end(release: asyncio.Event) -> AsyncIterator[None]:
    """Let the hanging key set answer at the end, failed or not (its server waits for it)."""
    try:
        yield
    finally:
        release.set()


async def test_a_key_set_fetch_that_hangs_holds_neither_a_reload_nor_a_stop(
    stack: Stack, tmp_path: Path
) -> None:
    app, release = hanging_key_set()
    async with serving(app) as jwks:
        url = f"http://127.0.0.1:{jwks.port}/jwks"
        options = ("--jwks-url", url, "--jwks-every", "0.2")
        async with (
            release_at_the_end(release),
            edge_command(stack, tmp_path, *options) as (
                process,
                edge_url,
            ),
        ):
            await asyncio.sleep(0.5)  # the second fetch hangs now (for 5 s, its timeout)
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                assert (await client.get(edge_url + "/v1/instruments")).status_code == 200
            started = time.monotonic()
            process.send_signal(signal.SIGHUP)
            assert await line_starting(process, "mdp edge: reloaded") == "mdp edge: reloaded"
            assert await asyncio.to_thread(stop_process, process, TIMEOUT) == 0
            assert time.monotonic() - started < 3.0  # well within the fetch's 5 s
