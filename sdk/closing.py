"""``async with`` for the SDK's HTTP clients: each closes its own httpx client on leaving."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx


class OwnsHttp:
    """Holds ``http``, the caller's (left open) or, when None, one made here and closed by
    :meth:`aclose` or by leaving ``async with``."""

    def __init__(self, http: httpx.AsyncClient | None, timeout: float) -> None:
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
