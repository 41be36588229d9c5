"""Real Prometheus and Alertmanager (Debian's packages) started by tests on loopback.

Each gets a temp config and data dir, a port the OS picked (bind 0, release, retry if it is
taken by the time the server binds), and short intervals (1 s scrape and evaluation, no
Alertmanager group wait), and is stopped by the fixture that started it. Missing binaries
skip the tests on a laptop but fail them under CI=true: CI must never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

READY_TIMEOUT = 20.0


def find_binary(*names: str) -> str:
    """The first of `names` on PATH (or in /usr/bin, /usr/sbin); skip, or fail under CI."""
    for name in names:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}") if os.access(p, os.X_OK)),
            None,
        )
        if found:
            return found
    message = f"{' / '.join(names)} not installed (apt-get install -y {names[0]})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_ready(server: Server) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/-/ready", timeout=1, trust_env=False).status_code == 200:
                return True
        time.sleep(0.1)
    return False


def start_server(
    argv_for_port: Callable[[int], list[str]], workdir: Path, name: str, attempts: int = 4
) -> Server:
    """Start a server on a free port, retrying with another one if the port was taken."""
    for attempt in range(attempts):
        port = free_port()
        log = workdir / f"{name}-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv_for_port(port), stdout=out, stderr=subprocess.STDOUT, cwd=workdir
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        if _wait_ready(server):
            return server
        server.stop()
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{name} did not become ready; its log ends:\n{tail}")


def alertmanager_config(webhook_url: str, token: str) -> str:
    return f"""
route:
  receiver: warroom
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: warroom
    webhook_configs:
      - url: "{webhook_url}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{token}"
"""


def prometheus_config(alertmanager: str, targets_file: Path, rules_file: Path) -> str:
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: ["{rules_file}"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{alertmanager.removeprefix("http://")}"]
scrape_configs:
  - job_name: warroom-sim
    honor_labels: true
    file_sd_configs:
      - files: ["{targets_file}"]
        refresh_interval: 1s
"""


@dataclass
class PromStack:
    """A running Prometheus + Alertmanager pair and where to plug the fleet and warroom in."""

    prometheus: Server
    alertmanager: Server
    targets_file: Path
    webhook_port: int
    webhook_token: str

    def scrape(self, target_groups: list[dict[str, object]]) -> None:
        """Point Prometheus at these `file_sd` target groups (it re-reads the file at once)."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(target_groups))
        tmp.replace(self.targets_file)


@contextlib.contextmanager
def prom_stack(workdir: Path, rules: str) -> Iterator[PromStack]:
    """Alertmanager (webhook to a port reserved for the test's receiver) and Prometheus."""
    prometheus_bin = find_binary("prometheus")
    alertmanager_bin = find_binary("prometheus-alertmanager", "alertmanager")
    token = "test-webhook-token-0123456789"
    webhook_port = free_port()
    am_dir = workdir / "alertmanager"
    am_dir.mkdir()
    (am_dir / "alertmanager.yml").write_text(
        alertmanager_config(f"http://127.0.0.1:{webhook_port}/alerts", token)
    )
    alertmanager = start_server(
        lambda port: [
            alertmanager_bin,
            f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        am_dir,
        "alertmanager",
    )
    try:
        prom_dir = workdir / "prometheus"
        prom_dir.mkdir()
        targets = prom_dir / "targets.json"
        targets.write_text("[]")
        rules_file = prom_dir / "rules.yml"
        rules_file.write_text(rules)
        (prom_dir / "prometheus.yml").write_text(
            prometheus_config(alertmanager.url, targets, rules_file)
        )
        prometheus = start_server(
            lambda port: [
                prometheus_bin,
                f"--config.file={prom_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url=http://127.0.0.1:{port}/",
                "--log.level=warn",
            ],
            prom_dir,
            "prometheus",
        )
        try:
            yield PromStack(prometheus, alertmanager, targets, webhook_port, token)
        finally:
            prometheus.stop()
    finally:
        alertmanager.stop()
