"""A real Prometheus (Debian's ``prometheus``) scraping given targets every second.

It is started from the machine's binary on a free port of 127.0.0.1, with a configuration
and a storage folder of its own under the test's temporary folder, and stopped by its pid.
Tests that need it skip with the reason when the binary is absent (``scripts/test`` installs
it with apt, as it does HAProxy)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from machine import free_port, stop_process

BINARY = "/usr/bin/prometheus"
READY_S = 20.0
SCRAPE_INTERVAL = "1s"
UNTIL_S = 10.0
"""How long a condition on scraped values may take: a few scrapes of a second each."""


def prometheus_or_skip() -> str:
    found = BINARY if Path(BINARY).exists() else shutil.which("prometheus")
    if found is None:
        pytest.skip(
            "Prometheus is not installed (apt-get install prometheus; scripts/test does it)"
        )
    return found


def configuration(targets: Mapping[str, str], rule_files: Iterable[Path] = ()) -> str:
    """prometheus.yml: one job per target (``job name -> host:port``), /metrics every second,
    and the rule files (paths or globs), evaluated every second."""
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
        for job, target in targets.items()
    )
    rules = "".join(f"  - '{path}'\n" for path in rule_files)
    return (
        "global:\n"
        f"  scrape_interval: {SCRAPE_INTERVAL}\n"
        f"  scrape_timeout: {SCRAPE_INTERVAL}\n"
        f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + "scrape_configs:\n"
        + jobs
    )


class Prometheus:
    """A running Prometheus: its HTTP API at ``url``, asked without blocking the event loop
    (the platform under test may run in it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.AsyncClient(base_url=url, timeout=5)

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now (``/api/v1/query``)."""
        answer = await self.client.get("/api/v1/query", params={"query": promql})
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "success", body
        assert body["data"]["resultType"] == "vector", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def value(self, promql: str) -> float | None:
        """The single sample ``promql`` gives now, or None when it gives none."""
        result = await self.query(promql)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    async def until(
        self, promql: str, holds: Callable[[float], bool], timeout: float = UNTIL_S
    ) -> float:
        """Wait for ``holds(value)`` of ``promql``'s single sample; the value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await self.value(promql)
            if last is not None and holds(last):
                return last
            await asyncio.sleep(0.2)
        raise AssertionError(f"{promql} never held within {timeout}s; last: {last}")


@contextlib.asynccontextmanager
async def running_prometheus(
    folder: Path, targets: Mapping[str, str], rule_files: Iterable[Path] = ()
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``targets`` (and evaluating ``rule_files``) until the block ends;
    its log in ``folder``."""
    binary = prometheus_or_skip()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    config.write_text(configuration(targets, rule_files))
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        await _wait_ready(prometheus, process, folder)
        yield prometheus
    finally:
        await prometheus.client.aclose()
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a server this test started, by its pid: SIGTERM, then SIGKILL after 10 s."""
    stop_process(process, 10)


async def _wait_ready(
    prometheus: Prometheus, process: subprocess.Popen[bytes], folder: Path
) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (folder / "prometheus.log").read_text(errors="replace")
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{log}")
        with contextlib.suppress(httpx.TransportError):
            if (await prometheus.client.get("/-/ready")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"prometheus was not ready within {READY_S}s")
