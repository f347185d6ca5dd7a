"""Free ports on this machine, for the local servers the platform and its tests start."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` now (bound, read and released).

    Another process may take it before the caller binds it: servers that must not lose it
    bind their own socket and pass it on (as ``web.server.serving`` does).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
