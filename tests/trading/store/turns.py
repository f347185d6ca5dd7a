"""A TCP relay on 127.0.0.1 that counts a client's turns: the times it starts sending after the
server has answered (or for the first time). One turn is one round trip the client waits on."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trading.store.database import Database, StoreSettings


class TurnCounter:
    """Relays every connection made to :attr:`url` to the server of ``url``."""

    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        self._server = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = make_conninfo(url, host="127.0.0.1", port=str(self._listener.getsockname()[1]))
        self._lock = threading.Lock()
        self._client_spoke_last = False
        self.turns = 0
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.turns = 0
            self._client_spoke_last = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._server)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for end in (source, sink):
                    end.close()
                return
            with self._lock:  # noted before it is passed on: the answer comes after
                if from_client and not self._client_spoke_last:
                    self.turns += 1
                self._client_spoke_last = from_client
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@contextlib.contextmanager
def counted_database(url: str) -> Iterator[tuple[TurnCounter, Database]]:
    """The store on ``url`` through a :class:`TurnCounter`, its tables made, with a pool of
    one connection (every append on it is counted the same way)."""
    with (
        contextlib.closing(TurnCounter(url)) as relay,
        Database(StoreSettings(relay.url, pool_size=1)) as database,
    ):
        database.create_tables()
        yield relay, database
