"""The delivery worker: the asyncio shell that sends the due webhook deliveries (it runs in
the main API process, :mod:`main_api.process`; several processes may run one each).

It keeps up to ``batch`` attempts in flight, at most one per endpoint: it claims due
deliveries as there is room (``FOR UPDATE SKIP LOCKED``: deliveries another worker holds
are skipped, never sent twice at once; an endpoint with an attempt in flight, here or in
another worker, is passed over until it ends), and each attempt runs on its own, so a slow
endpoint holds back only its own deliveries. An attempt resolves the host once, checks every
address (:mod:`~main_api.webhooks.pinning`) and POSTs, signed, to the first one, pinned,
within ``timeout_s`` (redirects are not followed; at most ``max_response_bytes`` of the
answer are read); what it got and what follows (:func:`~main_api.webhooks.schedule.
after_attempt`) is recorded, and the end wakes the worker to claim more. Otherwise it waits
for the next delivery it can take, a ``NOTIFY`` on :data:`~main_api.webhooks.tables.CHANNEL`
(a firing enqueued, a replay) or ``poll_s``, whichever comes first. Every ``prune_s`` it
deletes a bounded batch of deliveries delivered longer than ``keep_delivered_s`` ago and of
dead letters dead longer than ``keep_dead_s`` (again at once while batches come back full).
While the database is away it tries again every ``retry_s``: a claimed delivery whose end
could not be recorded is due again when its hold runs out (so a receiver may get an event
twice: it drops the repeat by ``Ganntec-Event-Id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import httpx
import psycopg

from core.webhooks import ATTEMPT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, signature_header
from main_api.errors import StoreUnavailableError
from main_api.webhooks.pinning import pinned, refusal
from main_api.webhooks.schedule import Outcome, after_attempt
from main_api.webhooks.settings import WebhookSettings
from main_api.webhooks.store import Claimed, WebhookStore
from main_api.webhooks.tables import CHANNEL

_log = logging.getLogger(__name__)
USER_AGENT = "Ganntec-Webhooks/1"
LISTEN_PING_S = 5.0


Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""The addresses a host (and port) resolves to; :class:`OSError` when it does not."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses as the system resolves them (``getaddrinfo``, off the loop)."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


class WebhookWorker:
    """Sends ``store``'s due deliveries; ``listen_url``: the database to ``LISTEN`` on (else
    it only polls); ``draw``: the jitter's random draw in ``[0, 1)``; ``resolve``: how a
    host's addresses are found (each attempt resolves once, checks them, and connects to the
    first)."""

    def __init__(
        self,
        store: WebhookStore,
        settings: WebhookSettings,
        *,
        listen_url: str | None = None,
        draw: Callable[[], float] = random.random,
        resolve: Resolver = system_resolver,
    ) -> None:
        self.store, self.settings, self.listen_url, self.draw = store, settings, listen_url, draw
        self.resolve = resolve
        self._next_prune = 0

    def client(self) -> httpx.AsyncClient:
        """The HTTP client the worker sends with (no redirects, no proxies from the
        environment, no connection kept between attempts: a pooled connection is keyed by
        the address, and two endpoints on one address must not share one TLS session)."""
        return httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self.settings.timeout_s,
            headers={"User-Agent": USER_AGENT}, limits=httpx.Limits(max_keepalive_connections=0),
        )  # fmt: skip

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

    async def _fly(self, client: httpx.AsyncClient, claimed: Claimed) -> None:
        """One delivery in flight: its failures are logged, never raised (its hold runs out
        and it is due again)."""
        try:
            await self._deliver(client, claimed)
        except StoreUnavailableError as exc:
            _log.warning("webhook %s: %s not recorded: %s", claimed.webhook_id,
                         claimed.fire_id, exc)  # fmt: skip
        except Exception:
            _log.exception("webhook %s: %s failed", claimed.webhook_id, claimed.fire_id)

    async def attempt(self, client: httpx.AsyncClient, claimed: Claimed) -> Outcome:
        """POST ``claimed``'s body, signed now, to its URL, pinned to the address its host
        resolved to and that was checked: what came of it."""
        timestamp = self.store.clock() // 10**9
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(claimed.secrets, timestamp, claimed.body),
            EVENT_ID_HEADER: claimed.fire_id,
            ATTEMPT_HEADER: str(claimed.attempts),
        }
        settings = self.settings
        try:
            async with asyncio.timeout(settings.timeout_s):
                url = httpx.URL(claimed.url)
                port = url.port or (443 if url.scheme == "https" else 80)
                try:
                    addresses = await self.resolve(url.raw_host.decode("ascii"), port)
                except OSError:
                    return Outcome(error="dns-error")
                refused = refusal(
                    addresses, allow_private=settings.allow_private_hosts,
                    allowed=settings.allowed_networks,
                )  # fmt: skip
                if refused is not None:
                    return Outcome(error=refused)
                target = pinned(claimed.url, addresses[0])
                headers["Host"] = target.host
                request = client.build_request(
                    "POST", target.url, content=claimed.body, headers=headers,
                    extensions=target.extensions,
                )  # fmt: skip
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= settings.max_response_bytes:
                            break
                finally:
                    await response.aclose()
                return Outcome(status=response.status_code)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(error="timeout")
        except httpx.ConnectError:
            return Outcome(error="connect-error")
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}")

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set (then let the attempts in flight end), riding out
        database outages (and logging any other failure of a round, then going on).

        Up to ``batch`` attempts are in flight at once, at most one per endpoint; as each
        ends, the worker is woken to take more, so a slow endpoint holds only its own
        deliveries."""
        failing = False
        flights: set[asyncio.Task[None]] = set()
        async with self.client() as client, self._wakeups() as woken:

            def landed(task: asyncio.Task[None]) -> None:
                flights.discard(task)
                woken.set()

            try:
                while not stop.is_set():
                    woken.clear()  # what is enqueued (or lands) from here on wakes the wait
                    try:
                        wait = await self._take(client, flights, landed)
                        wait = min(wait, await self._prune())
                    except StoreUnavailableError as exc:
                        if not failing:
                            _log.warning("webhooks: %s; retrying every %.1f s", exc,
                                         self.settings.retry_s)  # fmt: skip
                        failing, wait = True, self.settings.retry_s
                    except Exception:  # a bug or a surprise must not end the deliveries
                        _log.exception("webhooks: a round failed; retrying in %.1f s",
                                       self.settings.retry_s)  # fmt: skip
                        wait = self.settings.retry_s
                    else:
                        if failing:
                            _log.info("webhooks: the database is back")
                        failing = False
                    await _wait(stop, woken, wait)
            finally:
                if flights:  # each is bounded by the attempt's timeout
                    await asyncio.gather(*flights, return_exceptions=True)

    async def _take(
        self,
        client: httpx.AsyncClient,
        flights: set[asyncio.Task[None]],
        landed: Callable[[asyncio.Task[None]], None],
    ) -> float:
        """Claim what there is room for and start it; how long to wait before looking again
        (an attempt that lands wakes the worker sooner)."""
        settings = self.settings
        room = settings.batch - len(flights)
        if room <= 0:
            return settings.poll_s
        claimed = await self.store.claim(room, settings.timeout_s + settings.lease_s)
        for one in claimed:
            task = asyncio.create_task(self._fly(client, one), name=f"webhook:{one.webhook_id}")
            flights.add(task)
            task.add_done_callback(landed)
        if len(claimed) == room:
            return settings.poll_s  # full: a landing wakes the worker
        return await self._until_due()

    async def _prune(self) -> float:
        """Delete a batch of deliveries delivered, and of dead letters dead, longer ago than
        they are kept, every ``prune_s``; how long until the next batch (at once while a
        batch comes back full)."""
        settings, now = self.settings, self.store.clock()
        if now < self._next_prune:
            return (self._next_prune - now) / 1e9
        self._next_prune = now + int(settings.prune_s * 1e9)  # a failure waits as long
        gone = await self.store.prune(
            now - int(settings.keep_delivered_s * 1e9), now - int(settings.keep_dead_s * 1e9),
            settings.prune_batch,
        )  # fmt: skip
        if gone:
            _log.info("webhooks: pruned %d old deliveries and dead letters", gone)
        if gone >= settings.prune_batch:
            self._next_prune = now
            return 0.0
        return settings.prune_s

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
