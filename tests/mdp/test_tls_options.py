"""``--tls-cert``, ``--tls-key`` and ``--tls-ca``, defined once for every serving command:
what they give, and one clear line for each wrong use, before anything starts."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from certs.authority import summarize
from mdp.cli import build_parser
from mdp.tls_options import add_tls_options, tls_of
from telemetry.metrics import REGISTRY
from tests.support.tls import make_pki

SERVING = [
    ["api"],
    ["auth", "serve"],
    ["main-api"],
    ["trading", "serve"],
    ["gateway"],
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_tls_options(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("command", SERVING)
def test_every_serving_command_takes_the_tls_options(command: list[str], tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    files = ["--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)]
    args = build_parser().parse_args([*command, *files, "--tls-ca", str(pki.ca)])
    assert tls_of(args) == pki.server
    expiry = REGISTRY.get_sample_value("mdp_tls_certificate_expiry_seconds", {"file": "server.crt"})
    assert expiry == summarize(pki.server.cert.read_bytes()).not_after.timestamp()
    assert REGISTRY.get_sample_value("mdp_tls_certificate_expiry_seconds", {"file": "ca.crt"})


def test_none_given_is_plain() -> None:
    assert tls_of(parse()) is None


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--tls-cert", "CERT"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "CA"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "MISSING", "--tls-key", "KEY"], "--tls-cert MISSING: no such file"),
        (["--tls-cert", "CERT", "--tls-key", "OTHER"], "cannot use --tls-cert"),
        (["--tls-cert", "CERT", "--tls-key", "KEY", "--tls-ca", "KEY"], "and --tls-ca"),
    ],
)
def test_wrong_files_are_told(tmp_path: Path, given: list[str], said: str) -> None:
    pki = make_pki(tmp_path)
    files = {
        "CERT": pki.server.cert, "KEY": pki.server.key, "OTHER": pki.client.key,
        "CA": pki.ca, "MISSING": tmp_path / "missing.crt",
    }  # fmt: skip
    argv = [str(files.get(word, word)) for word in given]
    with pytest.raises(ValueError, match=re.escape(said.replace("MISSING", str(files["MISSING"])))):
        tls_of(parse(*argv))
