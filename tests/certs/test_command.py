"""``mdp certs``: the CA and service files, their modes and names, keeping and renewing, and
the days left reported."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from certs.authority import CertificateError, Names, issue, make_authority, summarize
from mdp.cli import main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_then_issue_writes_keys_private_and_names_the_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tls"
    assert main(["certs", "init", "--dir", str(folder)]) == 0
    assert main(["certs", "issue", "api", "--dir", str(folder), "--dns", "api.internal",
                 "--ip", "127.0.0.1", "--ip", "::1"]) == 0  # fmt: skip
    assert mode(folder / "ca.key") == mode(folder / "api.key") == mode(folder / "api.pem") == 0o600
    assert mode(folder / "ca.crt") == mode(folder / "api.crt") == 0o644
    cert = x509.load_pem_x509_certificate((folder / "api.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api", "api.internal"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
    ]  # fmt: skip
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == 90  # the backdating's minutes do not make a day
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert (folder / "api.pem").read_bytes().startswith((folder / "api.crt").read_bytes())
    out = capsys.readouterr().out
    assert "PRIVATE KEY" not in out
    assert "api issued" in out


def test_init_and_issue_again_keep_what_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["certs", "init", "--dir", str(tmp_path)])
    main(["certs", "issue", "auth", "--dir", str(tmp_path)])
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    capsys.readouterr()
    assert main(["certs", "init", "--dir", str(tmp_path)]) == 0
    assert main(["certs", "issue", "auth", "--dir", str(tmp_path)]) == 0
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    out = capsys.readouterr().out
    assert "CA kept" in out
    assert "auth kept" in out
    assert main(["certs", "issue", "auth", "--dir", str(tmp_path), "--renew"]) == 0
    assert (tmp_path / "auth.key").read_bytes() != before["auth.key"]


def test_issue_with_other_names_is_refused_without_renew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["certs", "init", "--dir", str(tmp_path)])
    main(["certs", "issue", "api", "--dir", str(tmp_path)])
    assert main(["certs", "issue", "api", "--dir", str(tmp_path), "--dns", "x.internal"]) == 2
    assert "give --renew" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["issue", "api"], "no CA in"),
        (["issue", "Api"], "is not a service name"),
        (["issue", "api", "--ip", "1.2.3"], "--ip '1.2.3' is not an IP address"),
        (["issue", "api", "--dns", "a b"], "--dns 'a b' is not a DNS name"),
        (["issue", "api", "--days", "400"], "--days: 1 to 397"),
    ],
)
def test_bad_requests_are_told_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    if said != "no CA in":
        main(["certs", "init", "--dir", str(tmp_path)])
    capsys.readouterr()
    assert main(["certs", *argv, "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert err.count("\n") == 1


def test_a_ca_key_without_its_certificate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["certs", "init", "--dir", str(tmp_path)])
    (tmp_path / "ca.crt").unlink()
    assert main(["certs", "init", "--dir", str(tmp_path)]) == 2
    assert "without its pair" in capsys.readouterr().err


def test_check_reports_days_left_and_fails_near_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["certs", "init", "--dir", str(tmp_path)])
    main(["certs", "issue", "gateway", "--dir", str(tmp_path), "--days", "20"])
    capsys.readouterr()
    assert main(["certs", "check", "--dir", str(tmp_path), "--warn-days", "10"]) == 0
    out = capsys.readouterr().out
    assert "gateway.crt: 20 days left" in out
    assert "ca.crt: 3650 days left" in out
    assert main(["certs", "check", "--dir", str(tmp_path)]) == 1  # under the default 30
    out = capsys.readouterr().out
    assert "gateway.crt: 20 days left (until" in out
    assert "renew soon" in out


def test_check_names_a_file_that_is_not_a_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["certs", "init", "--dir", str(tmp_path)])
    (tmp_path / "broken.crt").write_text("not PEM")
    capsys.readouterr()
    assert main(["certs", "check", "--dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'broken.crt'} is not a PEM certificate" in capsys.readouterr().err


def test_a_certificate_cannot_outlive_its_ca() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ca = make_authority(now, days=30)
    with pytest.raises(CertificateError, match="the CA expires before"):
        issue(ca, Names.of("api"), now, days=60)
    made = issue(ca, Names.of("api"), now, days=20)
    assert summarize(made.certificate).not_after == now + dt.timedelta(days=20)
    assert "PRIVATE" not in repr(made)
