"""The Apache Kafka broker's jars: collected once from Maven Central with Maven, then cached.

``streams/kafka/broker/pom.xml`` names them (``org.apache.kafka:kafka_2.13`` and an SLF4J
binding); :func:`ensure_jars` runs ``mvn dependency:copy-dependencies`` on it into a cache
folder outside the repository, ``$XDG_CACHE_HOME/ganntec-mdp/kafka-<version>/jars`` (or
``~/.cache/...``), and reuses that folder afterwards. A failed or interrupted download leaves
nothing half-filled behind: the jars land in a temporary folder renamed into place at the end.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

from machine import cache_dir

POM: Final = Path(__file__).resolve().parent / "broker" / "pom.xml"
_COMPLETE: Final = ".complete"
_MAVEN_TIMEOUT: Final = 900.0
_TAIL_LINES: Final = 25


class KafkaSetupError(RuntimeError):
    """The broker could not be set up, started or stopped; the message says why."""


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version the pom names (``3.9.1``)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if found is None:
        raise KafkaSetupError(f"{pom} names no <kafka.version>")
    return found.group(1).strip()


def jars_dir(cache: Path | None = None, pom: Path = POM) -> Path:
    """Where the jars of this pom's Kafka version live (whether collected yet or not)."""
    return (cache or cache_dir()) / f"kafka-{kafka_version(pom)}" / "jars"


def maven_command(pom: Path, output: Path) -> list[str]:
    """The Maven command that collects the jars into ``output``."""
    return [
        "mvn",
        "--batch-mode",
        "--quiet",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output}",
    ]


def ensure_jars(
    cache: Path | None = None, pom: Path = POM, say: Callable[[str], None] | None = None
) -> Path:
    """The folder of the broker's jars, collecting them with Maven the first time.

    Raises :class:`KafkaSetupError` with Maven's command and the tail of its output when Maven
    is missing or fails (say, Maven Central cannot be reached).
    """
    target = jars_dir(cache, pom)
    if (target / _COMPLETE).is_file():
        return target
    if shutil.which("mvn") is None:
        raise KafkaSetupError(
            "Maven (`mvn`) is needed once to collect the Kafka broker's jars; install it"
            " (Debian: apt-get install maven) or point KAFKA_BOOTSTRAP at a running broker"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="jars-", dir=target.parent))
    command = maven_command(pom, staging)
    if say is not None:
        say(f"collecting the Kafka {kafka_version(pom)} jars with Maven into {target}")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_MAVEN_TIMEOUT, check=False
        )
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            output = (done.stdout + done.stderr).strip().splitlines()[-_TAIL_LINES:]
            raise KafkaSetupError(
                f"`{' '.join(command)}` failed (exit {done.returncode}):\n" + "\n".join(output)
            )
        (staging / _COMPLETE).write_text(" ".join(command) + "\n")
        if target.exists():  # another process finished first
            shutil.rmtree(staging)
        else:
            staging.rename(target)
    except subprocess.TimeoutExpired as exc:
        raise KafkaSetupError(f"`{' '.join(command)}` took over {_MAVEN_TIMEOUT:g}s") from exc
    finally:
        if staging.exists() and staging != target:
            shutil.rmtree(staging, ignore_errors=True)
    return target
