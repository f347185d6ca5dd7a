"""The delivery worker: the asyncio shell that sends the due webhook deliveries (it runs in
the main API process, :mod:`main_api.process`; several processes may run one each).

Each round it claims up to ``batch`` due deliveries (``FOR UPDATE SKIP LOCKED``: deliveries
another worker holds are skipped, never sent twice at once), POSTs each, signed, within
``timeout_s`` (redirects are not followed; at most ``max_response_bytes`` of the answer are
read), and records what the attempt got and what follows (:func:`~main_api.webhooks.schedule.
after_attempt`). It waits for the next due delivery, a ``NOTIFY`` on
:data:`~main_api.webhooks.tables.CHANNEL` (a firing enqueued, a replay) or ``poll_s``,
whichever comes first. While the database is away it tries again every ``retry_s``: a claimed
delivery whose end could not be recorded is due again when its hold runs out (so a receiver
may get an event twice: it drops the repeat by ``Ganntec-Event-Id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable

import httpx
import psycopg

from core.webhooks import ATTEMPT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header
from main_api.errors import StoreUnavailableError
from main_api.webhooks.schedule import Outcome, after_attempt
from main_api.webhooks.settings import WebhookSettings
from main_api.webhooks.store import Claimed, WebhookStore
from main_api.webhooks.tables import CHANNEL
from main_api.webhooks.urls import public_address

_log = logging.getLogger(__name__)
USER_AGENT = "Ganntec-Webhooks/1"
LISTEN_PING_S = 5.0


class WebhookWorker:
    """Sends ``store``'s due deliveries; ``listen_url``: the database to ``LISTEN`` on (else
    it only polls); ``draw``: the jitter's random draw in ``[0, 1)``."""

    def __init__(
        self,
        store: WebhookStore,
        settings: WebhookSettings,
        *,
        listen_url: str | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store, self.settings, self.listen_url, self.draw = store, settings, listen_url, draw

    def client(self) -> httpx.AsyncClient:
        """The HTTP client the worker sends with (no redirects, no proxies from the
        environment)."""
        return httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self.settings.timeout_s,
            headers={"User-Agent": USER_AGENT}, limits=httpx.Limits(max_keepalive_connections=8),
        )  # fmt: skip

    async def round(self, client: httpx.AsyncClient) -> int:
        """Claim and send one batch; how many were sent."""
        settings = self.settings
        claimed = await self.store.claim(settings.batch, settings.timeout_s + settings.lease_s)
        ended = await asyncio.gather(
            *(self._deliver(client, one) for one in claimed), return_exceptions=True
        )
        for result in ended:
            if isinstance(result, BaseException):
                raise result
        return len(claimed)

    async def _deliver(self, client: httpx.AsyncClient, claimed: Claimed) -> None:
        outcome = await self.attempt(client, claimed)
        then = after_attempt(
            claimed.attempts, outcome, self.settings.schedule, self.store.clock(), self.draw
        )
        if outcome.ok:
            _log.debug("webhook %s: %s delivered", claimed.webhook_id, claimed.fire_id)
        else:
            _log.info(
                "webhook %s: %s attempt %d: %s; now %s", claimed.webhook_id, claimed.fire_id,
                claimed.attempts, outcome.describe(), then.state,
            )  # fmt: skip
        await self.store.finish(claimed, outcome, then)

    async def attempt(self, client: httpx.AsyncClient, claimed: Claimed) -> Outcome:
        """POST ``claimed``'s body, signed now, to its URL: what came of it."""
        timestamp = self.store.clock() // 10**9
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(claimed.secrets, timestamp, claimed.body),
            EVENT_ID_HEADER: claimed.fire_id,
            ATTEMPT_HEADER: str(claimed.attempts),
        }
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                refusal = None if self.settings.allow_private_hosts else await _refusal(claimed.url)
                if refusal is not None:
                    return Outcome(error=refusal)
                request = client.build_request("POST", claimed.url, content=claimed.body,
                                               headers=headers)  # fmt: skip
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= self.settings.max_response_bytes:
                            break
                finally:
                    await response.aclose()
                return Outcome(status=response.status_code)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(error="timeout")
        except httpx.ConnectError:
            return Outcome(error="connect-error")
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}")

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set, riding out database outages (and logging any other
        failure of a round, then going on)."""
        failing = False
        async with self.client() as client, self._wakeups() as woken:
            while not stop.is_set():
                woken.clear()  # what is enqueued from here on wakes the next wait
                try:
                    if await self.round(client):
                        continue  # there may be more due
                    wait = await self._until_due()
                except StoreUnavailableError as exc:
                    if not failing:
                        _log.warning("webhooks: %s; retrying every %.1f s", exc,
                                     self.settings.retry_s)  # fmt: skip
                    failing, wait = True, self.settings.retry_s
                except Exception:  # a bug or a surprise must not end the deliveries for good
                    _log.exception("webhooks: a round failed; retrying in %.1f s",
                                   self.settings.retry_s)  # fmt: skip
                    wait = self.settings.retry_s
                else:
                    if failing:
                        _log.info("webhooks: the database is back")
                    failing = False
                await _wait(stop, woken, wait)

    async def _until_due(self) -> float:
        """Seconds until the next pending delivery is due, at most ``poll_s``."""
        at = await self.store.next_due()
        if at is None:
            return self.settings.poll_s
        return min(self.settings.poll_s, max(0.0, (at - self.store.clock()) / 1e9))

    @contextlib.asynccontextmanager
    async def _wakeups(self) -> AsyncIterator[asyncio.Event]:
        woken = asyncio.Event()
        if self.listen_url is None:
            yield woken
            return
        task = asyncio.create_task(_listen(self.listen_url, woken, self.settings.retry_s))
        try:
            yield woken
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _listen(url: str, woken: asyncio.Event, retry_s: float) -> None:
    """Set ``woken`` on each ``NOTIFY`` on :data:`CHANNEL` and at each (re)connection (what
    was enqueued meanwhile told nobody), until cancelled."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                woken.set()
                while True:
                    async for _ in conn.notifies(timeout=LISTEN_PING_S):
                        woken.set()
                    await conn.execute("SELECT 1")  # a dead connection is found and made again
        except psycopg.Error:
            await asyncio.sleep(retry_s)


async def _wait(stop: asyncio.Event, woken: asyncio.Event, timeout: float) -> None:
    """Until ``stop`` or ``woken`` is set, ``timeout`` at most."""
    if timeout <= 0:
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, woken)]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _refusal(url: str) -> str | None:
    """Why ``url`` may not be sent to now, or None: ``address-not-allowed`` when an address
    its host resolves to is not public (a name resolving to a private address is refused, not
    just a private literal), ``dns-error`` when it does not resolve (refused, not sent on:
    the client would resolve it again, perhaps elsewhere)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return "dns-error"
    if all(public_address(str(info[4][0])) for info in found):
        return None
    return "address-not-allowed"
