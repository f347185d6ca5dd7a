"""A progress line on stderr for long work: quiet for short runs, one line when it counts."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Prints ``describe()`` at most every ``every`` seconds, once ``after`` seconds have passed.

    On a terminal the line is rewritten in place; otherwise each report is its own line.
    """

    def __init__(self, stream: TextIO, after: float = 1.0, every: float = 1.0) -> None:
        self._stream = stream
        self._start = time.monotonic()
        self._next = self._start + after
        self._every = every
        self._tty = stream.isatty()
        self._shown = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def update(self, text: str) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._every
        self._shown = True
        if self._tty:
            self._stream.write("\r\x1b[K" + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self, text: str) -> None:
        """The closing line, always printed."""
        if self._shown and self._tty:
            self._stream.write("\r\x1b[K")
        self._stream.write(text + "\n")
        self._stream.flush()
