"""What every route needs: the settings and the database, once it is open."""

from __future__ import annotations

import time

from charting.database import HistoryDatabase
from charting.page_cache import PageCache
from charting.settings import ApiSettings


class Context:
    """Shared by the routes of one app. ``history`` is set when the app is created with an
    open database, or by the app's lifespan when it opens one itself."""

    def __init__(self, settings: ApiSettings, history: HistoryDatabase | None = None) -> None:
        self.settings = settings
        self._history = history
        self.pages = PageCache(settings.cache_bytes, settings.cache_recheck_ns, time.monotonic_ns)

    @property
    def history(self) -> HistoryDatabase:
        if self._history is None:
            raise RuntimeError("the history database is not open (the app's lifespan opens it)")
        return self._history

    @history.setter
    def history(self, history: HistoryDatabase | None) -> None:
        self._history = history
