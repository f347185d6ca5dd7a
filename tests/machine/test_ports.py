"""A reserved port is kept from every other socket but the server meant to bind it."""

from __future__ import annotations

import errno
import socket

from machine import free_port, reserved_port


def _listener(port: int, *, reuse_port: bool) -> socket.socket:
    server = socket.socket()
    if reuse_port:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def _bind_error(port: int) -> int:
    """The error number a plain bind to ``port`` meets (0: none)."""
    with socket.socket() as other:
        try:
            other.bind(("127.0.0.1", port))
        except OSError as refused:
            return refused.errno or -1
    return 0


def test_a_reserved_port_is_refused_to_other_binds_while_held() -> None:
    with reserved_port() as port:
        assert _bind_error(port) == errno.EADDRINUSE
    with _listener(port, reuse_port=False):
        pass  # released when the block ends


def test_the_server_binding_it_with_reuse_port_serves_beside_the_holder() -> None:
    with (
        reserved_port() as port,
        _listener(port, reuse_port=True) as server,
        socket.create_connection(("127.0.0.1", port), timeout=5) as client,
    ):
        accepted, _ = server.accept()
        with accepted:
            client.sendall(b"ping")
            assert accepted.recv(4) == b"ping"


def test_a_free_port_can_be_bound_at_once() -> None:
    with _listener(free_port(), reuse_port=False) as server:
        assert server.getsockname()[1] > 0
