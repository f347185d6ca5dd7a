"""Free ports on this machine, for the local servers the platform and its tests start."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` now (bound, read and released).

    Another process may take it before the caller binds it: servers that must not lose it
    bind their own socket and pass it on (as ``web.server.serving`` does), or hold a
    :func:`reserved_port` until they listen.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A free port at ``host`` that stays taken until the block ends, for a child server
    started later that binds it with ``SO_REUSEPORT`` (HAProxy does by default on Linux).

    The port is held by a bound socket that never listens, so it receives no connection,
    and the kernel hands it to no other socket (neither another bind to port 0 nor the local
    end of an outgoing connection) while the block runs; a plain :func:`free_port` leaves it
    to whoever asks first between the probe and the child's bind.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as holder:
        # SO_REUSEPORT only: the server binds beside it as the same user; SO_REUSEADDR would
        # also let any socket of that option bind the port while neither listens
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, 0))
        port: int = holder.getsockname()[1]
        yield port
