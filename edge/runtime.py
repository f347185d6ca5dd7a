"""HAProxy's runtime API, on the edge's Unix socket (``stats socket ... level admin``).

One command per connection, as HAProxy's non-interactive mode answers it: send the line, read
the answer to the end. Commands are built here from checked words only (no space, ``;`` or
line end in a word, so a word can never become a second command), and answers are bounded.
The maps the edge changes (:mod:`edge.revocations`) are named by their file's path, as the
configuration names them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
"""A ``show map`` of 100,000 entries is about 8 MB."""
TIMEOUT_S: Final = 5.0
_FORBIDDEN: Final = frozenset(" \t\r\n;\\\"'#")


class RuntimeApiError(RuntimeError):
    """The runtime API could not be reached, or refused a command (the message says which)."""


class Runtime:
    """The runtime API of one HAProxy, at ``socket``."""

    def __init__(self, socket: Path, timeout: float = TIMEOUT_S) -> None:
        self.socket = socket
        self.timeout = timeout

    async def execute(self, *words: str) -> str:
        """Send the command ``words`` and return HAProxy's answer."""
        for word in words:
            if not word or _FORBIDDEN.intersection(word):
                raise ValueError(f"{word!r} cannot be a word of a runtime command")
        try:
            return await asyncio.wait_for(self._exchange(words), self.timeout)
        except TimeoutError:
            message = f"HAProxy's runtime API did not answer {words[0]} in time"
            raise RuntimeApiError(message) from None
        except OSError as exc:
            raise RuntimeApiError(f"HAProxy's runtime API cannot be reached: {exc}") from None

    async def _exchange(self, words: tuple[str, ...]) -> str:
        # through the folder's descriptor: the whole path may be too long for a socket address
        folder = os.open(self.socket.parent, os.O_PATH | os.O_DIRECTORY)
        try:
            address = f"/proc/self/fd/{folder}/{self.socket.name}"
            reader, writer = await asyncio.open_unix_connection(address)
        finally:
            os.close(folder)
        try:
            writer.write(" ".join(words).encode() + b"\n")
            await writer.drain()
            answer = bytearray()
            while chunk := await reader.read(65536):
                answer += chunk
                if len(answer) > MAX_ANSWER_BYTES:
                    raise RuntimeApiError(f"HAProxy's answer to {words[0]} is too long")
            return answer.decode(errors="replace")
        finally:
            writer.close()

    async def show_map(self, file: Path) -> dict[str, str]:
        """The entries of the map ``file`` now (the first of duplicate keys)."""
        answer = await self.execute("show", "map", str(file))
        entries: dict[str, str] = {}
        for line in answer.splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[0].startswith("0x"):
                entries.setdefault(fields[1], fields[2])
            elif line.strip():
                raise RuntimeApiError(f"HAProxy could not show the map {file}: {line.strip()}")
        return entries

    async def add_map(self, file: Path, key: str, value: str) -> None:
        await self._change("add", file, key, value)

    async def set_map(self, file: Path, key: str, value: str) -> None:
        await self._change("set", file, key, value)

    async def del_map(self, file: Path, key: str) -> None:
        await self._change("del", file, key)

    async def _change(self, verb: str, file: Path, *words: str) -> None:
        answer = (await self.execute(verb, "map", str(file), *words)).strip()
        if answer:
            raise RuntimeApiError(f"HAProxy refused to {verb} {words[0]} in {file}: {answer}")
