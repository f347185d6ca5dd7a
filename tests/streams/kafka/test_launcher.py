"""The local broker launcher's pure parts, and its commands on a folder without a broker
(starting and stopping a real one is what the session fixture does with ``mdp kafka``)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest

from mdp.cli import main
from streams.kafka.jars import POM, jars_dir, kafka_version, maven_command
from streams.kafka.launcher import (
    LocalKafka,
    new_cluster_id,
    port_is_free,
    remembered_port,
    server_properties,
)
from tests.streams.kafka.conftest import mdp


def test_the_pom_names_a_kafka_3_9_broker_and_an_slf4j_binding() -> None:
    text = POM.read_text()
    assert kafka_version().startswith("3.9.")
    assert "<artifactId>kafka_2.13</artifactId>" in text
    assert "<artifactId>slf4j-reload4j</artifactId>" in text


def test_jars_are_cached_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    folder = jars_dir()
    assert folder == Path(f"/somewhere/cache/ganntec-mdp/kafka-{kafka_version()}/jars")
    command = maven_command(POM, folder)
    assert command[0] == "mvn"
    assert "dependency:copy-dependencies" in command
    assert f"-DoutputDirectory={folder}" in command


def test_a_cluster_id_is_16_bytes_in_url_safe_base64() -> None:
    for _ in range(50):
        cluster_id = new_cluster_id()
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
        assert not cluster_id.startswith("-")


def test_the_broker_listens_on_loopback_only_as_broker_and_controller(tmp_path: Path) -> None:
    lines = dict(
        line.split("=", 1) for line in server_properties(tmp_path, 9092, 9093, 6).splitlines()
    )
    assert lines["process.roles"] == "broker,controller"
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert lines["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert lines["num.partitions"] == "6"
    assert lines["log.dirs"] == str(tmp_path / "kraft-logs")


def test_status_and_stop_without_a_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert LocalKafka(tmp_path).status() is None
    assert main(["kafka", "status", "--data-dir", str(tmp_path)]) == 3
    assert main(["kafka", "stop", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["not running", "not running"]


def test_a_stale_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    (tmp_path / "broker.json").write_text(
        '{"pid": 999999999, "bootstrap": "127.0.0.1:1", "cluster_id": "x", "data_dir": "."}'
    )
    assert LocalKafka(tmp_path).status() is None
    assert not (tmp_path / "broker.json").exists()


def test_a_port_whose_last_connection_lingers_in_time_wait_is_free_for_a_listener() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_is_free(port), "a listener holds it"
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end lingers in TIME_WAIT
        client.close()
    assert port_is_free(port)


def test_a_folder_remembers_its_port(tmp_path: Path) -> None:
    assert remembered_port(tmp_path) is None
    (tmp_path / "port").write_text("19092\n")
    assert remembered_port(tmp_path) == 19092


def test_kafka_start_comes_back_on_the_port_it_left_right_after_a_stop(tmp_path: Path) -> None:
    """Started with --port 0, stopped while a client is connected (the port's connections
    linger in TIME_WAIT), started again without --port: the same address at once."""
    first = mdp("kafka", "start", "--data-dir", str(tmp_path), "--port", "0", "--partitions", "1")
    try:
        assert first.returncode == 0, first.stderr + first.stdout
        info = LocalKafka(tmp_path).status()
        assert info is not None
        host, port = info.bootstrap.rsplit(":", 1)
        with socket.create_connection((host, int(port))):
            assert mdp("kafka", "stop", "--data-dir", str(tmp_path)).returncode == 0
        again = mdp("kafka", "start", "--data-dir", str(tmp_path), "--partitions", "1")
        assert again.returncode == 0, again.stderr + again.stdout
        restarted = LocalKafka(tmp_path).status()
        assert restarted is not None
        assert restarted.bootstrap == info.bootstrap
    finally:
        mdp("kafka", "stop", "--data-dir", str(tmp_path))
