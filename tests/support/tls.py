"""Certificates for TLS tests, made by ``mdp certs``' own code: our CA with a server's and a
client's certificate, and a foreign CA with a client certificate of its own."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from certs.authority import Names
from certs.files import CA_CERT, init, issue_service, service_files
from certs.tls import TlsFiles
from machine import free_port, stop_process


@dataclass(frozen=True, slots=True)
class Pki:
    ca: Path
    server: TlsFiles
    """``server`` (127.0.0.1 and localhost), requiring client certificates of ``ca``."""
    client: TlsFiles
    """``client``: a service of ours calling, trusting ``ca``."""
    foreign: TlsFiles
    """A certificate of another CA, trusting ours for the server."""
    folder: Path

    def pem(self, name: str) -> Path:
        """``NAME.pem``: certificate and key in one file (HAProxy's ``crt``)."""
        return service_files(self.folder, name)[2]

    def without_certificate(self) -> ssl.SSLContext:
        """A client that checks the server but presents nothing."""
        return ssl.create_default_context(cafile=self.ca)


def _service(folder: Path, name: str, now: dt.datetime, ca: Path) -> TlsFiles:
    names = Names.of(name, ("localhost",), ("127.0.0.1",))
    cert, key, _ = issue_service(folder, names, now).files
    return TlsFiles(cert, key, ca)


def make_pki(tmp_path: Path) -> Pki:
    now = dt.datetime.now(dt.UTC)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    init(ours, now)
    init(theirs, now)
    ca = ours / CA_CERT
    server = _service(ours, "server", now, ca)
    client = _service(ours, "client", now, ca)
    foreign = _service(theirs, "foreign", now, ca)  # signed by theirs, trusts ours
    return Pki(ca, server, client, foreign, ours)


REPO: Final = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT: Final = 60.0
"""``mdp`` imports every command's modules first: seconds on a busy machine."""


@contextlib.asynccontextmanager
async def serving_command(pki: Pki, *argv: str) -> AsyncIterator[int]:
    """``mdp ARGV --port PORT`` with the server's certificate, key and CA (``--tls-*``) as a
    process of its own; yields PORT once it accepts connections, then stops the process
    (SIGTERM) and checks that it ended well."""
    port = free_port()
    files = ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)]
    command = [sys.executable, "-m", "mdp.cli", *argv, "--port", str(port), *files,
               "--tls-ca", str(pki.ca)]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while True:
                assert process.poll() is None, f"mdp {argv[0]} ended"
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                await asyncio.sleep(0.2)
        yield port
    finally:
        assert stop_process(process, 10) == 0
