"""A running edge kept current: the one I/O shell both ``mdp edge`` and ``mdp up`` use.

:class:`KeySource` is where the keys that tokens are checked with come from: a folder of
``<kid>.pem`` files, or the auth service's key set followed by :class:`access.jwks.JwksCache`
(async: a slow or absent auth service never holds the event loop; a failed fetch keeps the last
good key set). :class:`EdgeKeeper` holds a started :class:`~edge.haproxy.Haproxy` and its
settings: it reloads HAProxy when the key set changes (or when asked), feeds ``auth.events``
into the revocation map at run time, and raises :class:`~edge.haproxy.EdgeError` should
HAProxy stop by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from access.jwks import JwksCache
from access.keyset import KeySet
from edge.config import EdgeSettings, TokenPolicy, VerifyKey
from edge.haproxy import EdgeError, Haproxy
from edge.keys import MAX_DOCUMENT_BYTES, MAX_KEYS, KeySetError, parse_jwks, pems_of, write_keys
from edge.revocations import RevocationFeed
from edge.runtime import Runtime
from streams.bus import Bus

JWKS_PATH: Final = "/auth/.well-known/jwks.json"
FETCH_TIMEOUT_S: Final = 5.0
KEYS_LOOK_S: Final = 1.0
"""How often the keeper compares the key set with the one HAProxy runs with."""
WATCH_EVERY_S: Final = 0.5


def keys_in(folder: Path) -> tuple[VerifyKey, ...]:
    """The ``<kid>.pem`` files of ``folder``, at most :data:`MAX_KEYS`."""
    if not folder.is_dir():
        raise ValueError(f"--keys {folder}: no such folder")
    files = sorted(folder.glob("*.pem"))
    if len(files) > MAX_KEYS:
        raise ValueError(f"--keys {folder}: {len(files)} keys, at most {MAX_KEYS}")
    return tuple(VerifyKey(path.stem, path.absolute()) for path in files)


def fetch_keys(url: str, folder: Path) -> tuple[VerifyKey, ...]:
    """The key set at ``url``, written into ``folder`` (raises KeySetError or OSError), for a
    caller without an event loop; a running edge follows the key set with :class:`KeySource`."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
            document = answer.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise KeySetError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KeySetError(f"{url} cannot be reached: {reason}") from None
    return write_keys(folder, parse_jwks(document))


@dataclasses.dataclass
class KeySource:
    """The keys tokens are checked with, and the ``iss`` and ``aud`` they must name: the
    ``<kid>.pem`` files of ``keys_dir``, or the key set at ``url`` (fetched every ``every_s``
    seconds while :meth:`following`, written as files into ``folder``), or none."""

    folder: Path
    issuer: str
    audience: str
    url: str | None = None
    every_s: float = 30.0
    keys_dir: Path | None = None
    tls: ssl.SSLContext | None = None
    """What an ``https`` key set is fetched with (the edge's certificate presented)."""
    _cache: JwksCache | None = dataclasses.field(default=None, init=False)
    _written: tuple[KeySet, tuple[VerifyKey, ...]] | None = dataclasses.field(
        default=None, init=False
    )
    _fetching: asyncio.Task[bool] | None = dataclasses.field(default=None, init=False)

    @contextlib.asynccontextmanager
    async def following(self) -> AsyncIterator[None]:
        """Follow the key set URL (if any) while inside; the first fetch is done on entry."""
        if self.url is None:
            yield
            return
        cache = JwksCache(self.url, self.every_s, timeout_s=FETCH_TIMEOUT_S, tls=self.tls)
        async with cache:
            self._cache = cache
            try:
                yield
            finally:
                self._cache = None
                if self._fetching is not None:  # ended before the cache closes its client
                    self._fetching.cancel()
                    await asyncio.gather(self._fetching, return_exceptions=True)

    def refresh_soon(self) -> None:
        """Fetch the key set now, in the background: a fetch that hangs delays no reload;
        what it brings is taken in within :data:`KEYS_LOOK_S`."""
        if self._cache is not None and (self._fetching is None or self._fetching.done()):
            self._fetching = asyncio.create_task(self._cache.refresh())

    def policy(self) -> TokenPolicy | None:
        """What tokens must be, with the keys as they are now (None: no keys are configured;
        no key yet: every token is refused); raises KeySetError, ValueError or OSError when
        the keys cannot be read."""
        if self.keys_dir is not None:
            found = keys_in(self.keys_dir)
        elif self._cache is not None:
            found = self._fetched()
        else:
            return None
        return TokenPolicy(self.issuer, self.audience, found)

    def _fetched(self) -> tuple[VerifyKey, ...]:
        """The cache's keys, written as files when they changed."""
        assert self._cache is not None
        fetched = self._cache.keys
        if fetched is None:
            return ()
        if self._written is None or not fetched.same_as(self._written[0]):
            self._written = (fetched, write_keys(self.folder / "keys", pems_of(fetched)))
        return self._written[1]


class EdgeKeeper:
    """A started HAProxy with ``settings``, kept current while its tasks run: ``say`` tells
    what happens (a reload, a reload refused)."""

    def __init__(
        self,
        haproxy: Haproxy,
        settings: EdgeSettings,
        keys: KeySource,
        say: Callable[[str], None],
    ) -> None:
        self._haproxy = haproxy
        self._settings = settings
        self._keys = keys
        self._say = say
        self._feed: RevocationFeed | None = None

    @property
    def settings(self) -> EdgeSettings:
        return self._settings

    async def watch(self) -> None:
        """Returns only by raising :class:`EdgeError`, when HAProxy stops by itself."""
        while self._haproxy.pid is not None:
            await asyncio.sleep(WATCH_EVERY_S)
        raise EdgeError("HAProxy stopped by itself; see its log")

    async def follow_keys(self, reread: asyncio.Event | None = None) -> None:
        """For ever: reload when the key set changed (compared every :data:`KEYS_LOOK_S`),
        and whenever ``reread`` is set (then the key set is fetched again first)."""
        while True:
            forced = False
            if reread is None:
                await asyncio.sleep(KEYS_LOOK_S)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reread.wait(), KEYS_LOOK_S)
                    forced = True
                reread.clear()
            if forced:
                self._keys.refresh_soon()
            if forced or self._keys.url is not None:
                await self.reload(forced=forced)

    async def follow_revocations(self, bus: Bus) -> None:
        """For ever: ``auth.events`` on ``bus`` into HAProxy's revocation map."""
        runtime = Runtime(self._settings.runtime_socket)
        self._feed = RevocationFeed(bus, runtime, self._settings.revocation_map)
        await self._feed.run()

    async def reload(self, *, forced: bool = False) -> bool:
        """Read the keys again and reload when they changed (or when ``forced``); whether it
        reloaded. A failure keeps the running configuration."""
        try:
            tokens = await asyncio.to_thread(self._keys.policy)
            wanted = dataclasses.replace(self._settings, tokens=tokens)
            if wanted == self._settings and not forced:
                return False
            await asyncio.to_thread(self._haproxy.reload, wanted)
        except (EdgeError, KeySetError, ValueError, OSError) as exc:
            self._say(f"error: not reloaded, still serving as before: {exc}")
            return False
        self._settings = wanted
        if self._feed is not None:
            await self._feed.sync()  # what changed while the new workers started
        self._say("reloaded")
        return True
