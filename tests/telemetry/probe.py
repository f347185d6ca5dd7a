"""Asking an admin server's ``/readyz`` the way a kubelet does, and waiting for an answer."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def get(url: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of ``GET url`` (a 503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def answer(url: str) -> tuple[int, dict[str, Any]]:
    return await asyncio.to_thread(get, url)


async def until(
    url: str, wanted: Callable[[int, dict[str, Any]], bool], within: float = 20.0
) -> tuple[int, dict[str, Any]]:
    """Ask ``url`` until ``wanted(status, body)``; the last answer (the test asserts on it)."""
    deadline = time.monotonic() + within
    status, body = await answer(url)
    while not wanted(status, body) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        status, body = await answer(url)
    return status, body
