"""What every route needs: the settings, the token checks and the history reads, once they
are open."""

from __future__ import annotations

import time

from charting.gate import Gate
from charting.page_cache import PageCache
from charting.settings import ApiSettings
from storage.reads import HistoryReads


class Context:
    """Shared by the routes of one app. ``history`` is set when the app is created with an
    open store's reads, or by the app's lifespan when it opens a database itself."""

    def __init__(self, settings: ApiSettings, history: HistoryReads | None = None) -> None:
        self.settings = settings
        self._history = history
        self.gate = Gate(settings)
        self.pages = PageCache(settings.cache_bytes, settings.cache_recheck_ns, time.monotonic_ns)

    @property
    def history(self) -> HistoryReads:
        if self._history is None:
            raise RuntimeError("the history database is not open (the app's lifespan opens it)")
        return self._history

    @history.setter
    def history(self, history: HistoryReads | None) -> None:
        self._history = history
