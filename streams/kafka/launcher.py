"""A local single-node Apache Kafka broker (KRaft) for development and CI.

:class:`LocalKafka` owns one data folder: it writes ``server.properties`` (broker and controller
in one process, listening on 127.0.0.1 only), formats the log folder once with
``kafka.tools.StorageTool format``, starts ``java -cp 'jars/*' kafka.Kafka server.properties``
in a session of its own (it outlives the command that started it), waits, within a bound, until
the broker answers, and stops it by its pid. ``broker.json`` in the folder records the running
broker (pid, address, cluster id), so that ``mdp kafka status|stop`` find it again and a second
``start`` adopts it instead of starting another.

The jars come from :mod:`streams.kafka.jars` (Maven Central, cached outside the repository).
The heap is small (512 MiB) and the thread pools are sized for a two-core machine.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from machine import free_port, process_exists, state_dir
from streams.kafka.jars import KafkaSetupError, ensure_jars

DEFAULT_PORT: Final = 9092
STATE_NAME: Final = "broker.json"
LOG_NAME: Final = "broker.log"
PORT_NAME: Final = "port"
_READY_LINE: Final = "Kafka Server started"
_TAIL_LINES: Final = 40
_FORMAT_TIMEOUT: Final = 120.0


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A running broker: its pid, ``host:port`` for clients, and the cluster id."""

    pid: int
    bootstrap: str
    cluster_id: str
    data_dir: str


def default_data_dir() -> Path:
    """``$XDG_STATE_HOME/ganntec-mdp/kafka`` (or ``~/.local/state/ganntec-mdp/kafka``)."""
    return state_dir("kafka")


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's Uuid)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 now.

    The probe binds with ``SO_REUSEADDR``, as the broker's own server socket does: a port
    whose last connections linger in ``TIME_WAIT`` (for a minute after a broker stopped with
    clients connected) is free for a listener; one that something listens on is not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def remembered_port(data_dir: Path | None = None) -> int | None:
    """The client port the broker of ``data_dir`` used last, if it ever started."""
    folder = (data_dir or default_data_dir()).absolute()
    try:
        return int((folder / PORT_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None


def server_properties(data_dir: Path, port: int, controller_port: int, partitions: int = 4) -> str:
    """The broker's configuration: one node that is broker and KRaft controller at once."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir / "kraft-logs"),
        "num.partitions": str(partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "4",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
        "message.max.bytes": str(8 * 1024 * 1024),
        "replica.fetch.max.bytes": str(8 * 1024 * 1024),
        "share.coordinator.state.topic.replication.factor": "1",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


LOG4J: Final = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
"""


class LocalKafka:
    """The broker of one data folder; see the module text.

    ``port``: where clients connect (default: the one of the last run in this folder, else a
    free one). ``java``: the Java 11+ executable (default: ``$JAVA_HOME/bin/java`` or ``java``).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        heap_mb: int = 512,
        partitions: int = 4,
        cache: Path | None = None,
        start_timeout: float = 90.0,
        java: str | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).absolute()
        self._wanted_port = port
        self._heap_mb = heap_mb
        self._partitions = partitions
        self._cache = cache
        self._start_timeout = start_timeout
        self._java = java
        self._say = say or (lambda _text: None)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def state_file(self) -> Path:
        return self.data_dir / STATE_NAME

    # -- commands ---------------------------------------------------------------------------

    def status(self) -> BrokerInfo | None:
        """The broker running on this folder, or ``None`` (a stale ``broker.json`` is removed)."""
        info = self._recorded()
        if info is None:
            return None
        if _is_broker(info.pid):
            return info
        self.state_file.unlink(missing_ok=True)
        return None

    def start(self) -> BrokerInfo:
        """Start the broker (or adopt the one running on this folder) and wait until it answers."""
        running = self.status()
        if running is not None:
            self._say(f"Kafka is running already (pid {running.pid}) at {running.bootstrap}")
            return running
        java = self._find_java()
        jars = ensure_jars(self._cache, say=self._say)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self._choose_port()
        properties = self.data_dir / "server.properties"
        properties.write_text(server_properties(self.data_dir, port, free_port(), self._partitions))
        (self.data_dir / "log4j.properties").write_text(LOG4J)
        cluster_id = self._format(java, jars, properties)
        self._rotate_log()
        command = [
            java,
            f"-Xmx{self._heap_mb}m",
            f"-Xms{min(self._heap_mb, 256)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            "-cp",
            f"{jars}/*",
            "kafka.Kafka",
            str(properties),
        ]
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir,
                start_new_session=True,  # outlives `mdp kafka start`; Ctrl-C there spares it
            )
        info = BrokerInfo(self._process.pid, f"127.0.0.1:{port}", cluster_id, str(self.data_dir))
        self.state_file.write_text(json.dumps(asdict(info)) + "\n")
        try:
            self._wait_until_ready(port)
        except BaseException:
            self.stop()
            raise
        return info

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker of this folder by its pid (SIGTERM, then SIGKILL after ``timeout``).

        Returns whether one was running.
        """
        info = self._recorded()
        pid = info.pid if info is not None else None
        if pid is None and self._process is not None:
            pid = self._process.pid
        if pid is None or not _is_broker(pid):
            self._reap()
            self.state_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self.state_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])

    # -- steps ------------------------------------------------------------------------------

    def _find_java(self) -> str:
        java = self._java
        if java is None:
            home = os.environ.get("JAVA_HOME")
            java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
        if java is None or not Path(java).exists():
            raise KafkaSetupError(
                "Java 11 or newer is needed to run the Kafka broker (Debian:"
                " apt-get install openjdk-17-jre-headless), or set KAFKA_BOOTSTRAP"
            )
        return java

    def _choose_port(self) -> int:
        port = self._wanted_port
        if port is None:
            previous = remembered_port(self.data_dir)
            port = previous if previous is not None and port_is_free(previous) else free_port()
            if previous is not None and port != previous:
                self._say(f"port {previous} of the last run is taken: the broker moves to {port}")
        elif not port_is_free(port):
            raise KafkaSetupError(
                f"port {port} on 127.0.0.1 is taken: stop what listens there, or choose"
                " another port (mdp kafka start --port N)"
            )
        (self.data_dir / PORT_NAME).write_text(f"{port}\n")
        return port

    def _format(self, java: str, jars: Path, properties: Path) -> str:
        """Format the log folder once; return the cluster id (the stored one if formatted)."""
        meta = self.data_dir / "kraft-logs" / "meta.properties"
        if meta.is_file():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.partition("=")[2].strip()
        cluster_id = new_cluster_id()
        command = [java, "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format"]
        command += ["-t", cluster_id, "-c", str(properties), "--ignore-formatted"]
        env = os.environ | {"KAFKA_LOG4J_OPTS": ""}
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT, env=env, check=False
        )
        if done.returncode != 0:
            raise KafkaSetupError(
                f"formatting {meta.parent} failed (exit {done.returncode}):"
                f" {(done.stdout + done.stderr).strip()[-2000:]}"
            )
        return cluster_id

    def _rotate_log(self) -> None:
        if self.log_file.exists() and self.log_file.stat().st_size > 16 * 1024 * 1024:
            self.log_file.replace(self.log_file.with_suffix(".log.1"))

    def _wait_until_ready(self, port: int) -> None:
        deadline = time.monotonic() + self._start_timeout
        assert self._process is not None
        while True:
            code = self._process.poll()
            if code is not None:
                raise KafkaSetupError(
                    f"the Kafka broker exited with code {code} while starting;"
                    f" the end of {self.log_file}:\n{self.log_tail()}"
                )
            if _READY_LINE in self.log_tail(200) and _answers(port):
                return
            if time.monotonic() > deadline:
                raise KafkaSetupError(
                    f"the Kafka broker did not answer on 127.0.0.1:{port} within"
                    f" {self._start_timeout:g}s; the end of {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap()
            if not _is_broker(pid):
                return True
            time.sleep(0.1)
        return False

    def _reap(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    def _recorded(self) -> BrokerInfo | None:
        try:
            return BrokerInfo(**json.loads(self.state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _is_broker(pid: int) -> bool:
    """Whether ``pid`` is a live Kafka broker process (a zombie's command line is empty);
    without ``/proc`` (not Linux), whether the process exists at all."""
    if not process_exists(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()
    return b"kafka.Kafka" in cmdline
