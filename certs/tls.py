"""The TLS a service serves and calls with: its certificate and key, and the CA its peers'
certificates must be signed by (:class:`TlsFiles`), as :mod:`ssl` contexts.

Serving with a CA, a client must present a certificate the CA signed, or the handshake fails
(``CERT_REQUIRED``); calling, the server's certificate must be the CA's and name the host
called, and the service presents its own certificate. TLS 1.2 at least.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """``cert`` and ``key`` (PEM) are the service's own; ``ca`` (PEM), the authority its
    peers' certificates must come from (None when serving: no client certificate is asked
    for; when calling: the system's authorities)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        """For serving: clients must present a certificate of ``ca`` when it is given."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        if self.ca is not None:
            context.load_verify_locations(cafile=self.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """For calling other services: their certificate checked against ``ca`` (host name
        included), this service's presented."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        return context
