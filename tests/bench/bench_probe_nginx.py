"""The probe worker as the console runs it, against Debian's nginx on loopback: scale, hung
targets, and CPU per probe side by side with Debian's prometheus-blackbox-exporter.

Starts nginx (and for `--mode blackbox` the exporter) on 127.0.0.1 ports the OS picks, from
config files it writes to a temporary directory, and stops them at the end. The probe worker
(`python -m warroom.probe.worker`, sharded one per core by default) writes to a fresh incident
log; the figures come from that log's `probe_engine_health` and `probe_state_changed` events
and from /proc (CPU of the worker and its shards over the measured window, not their start-up).
Prints one JSON line, with the load average at the end (the machine may be shared).

    apt-get install -y nginx prometheus-blackbox-exporter
    nice .venv/bin/python tests/bench/bench_probe_nginx.py --mode scale --targets 5000 \
        --interval 2 --duration 60
    nice .venv/bin/python tests/bench/bench_probe_nginx.py --mode hung --duration 10
    nice .venv/bin/python tests/bench/bench_probe_nginx.py --mode blackbox --targets 1000 \
        --interval 1 --duration 30

- scale: every target healthy and fresh connections; goals at 5,000 x 2 s: 0 missed rounds,
  lag p99 < 100 ms; at any load: no false degraded or down (`false_transitions`).
- hung: `--hung` targets that never answer (a listener that never accepts) plus `--targets`
  healthy ones; after warm-up the healthy ones start failing (nginx answers 503) and the
  time from that fault to each "down" event is the detection latency (bound: interval x
  failure threshold + timeout + 0.2 s).
- blackbox: the same targets through the worker, then through the exporter (each target's
  `/probe` requested once an interval, as Prometheus would scrape it; the requester's own CPU
  is not counted), each for `--duration`; `cpu_ratio` is warroom's CPU per probe over the
  exporter's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from warroom import events as ev
from warroom.config import WarroomConfig, parse_config
from warroom.log.store import IncidentLog, read_events

NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {dir}/www;
        location = /health {{ default_type text/plain; return 200 "ok"; }}
        location = /status {{ default_type text/plain; try_files /flag =503; }}
    }}
}}
"""

BLACKBOX_CONF = """
modules:
  http_2xx:
    prober: http
    timeout: {timeout}s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


#: As the console runs the worker: samples (one per target) and health every 5 s.
SAMPLE_INTERVAL = 5.0


def warmup(args: argparse.Namespace) -> float:
    """Seconds before measuring: every target probed twice, and a whole health period, so
    that no period counted in the window includes the worker's start."""
    return max(args.interval * 2 + 1, SAMPLE_INTERVAL + 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench_probe_nginx: {what} exited ({process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"bench_probe_nginx: {what} did not listen on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def nginx(workdir: Path) -> Iterator[int]:
    """Debian's nginx on a port the OS picked; yields the port."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    (workdir / "www").mkdir()
    (workdir / "www" / "flag").write_text("ok")
    os.chmod(workdir, 0o755)
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, process, "nginx")
        yield port
    finally:
        stop(process)


@contextlib.contextmanager
def blackbox(workdir: Path, timeout: float) -> Iterator[tuple[int, int]]:
    """Debian's prometheus-blackbox-exporter; yields (port, pid)."""
    binary = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
    port = free_port()
    conf = workdir / "blackbox.yml"
    conf.write_text(BLACKBOX_CONF.format(timeout=timeout))
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={conf}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, process, "blackbox exporter")
        yield port, process.pid
    finally:
        stop(process)


@contextlib.contextmanager
def hanging_listener() -> Iterator[int]:
    """A port that listens and never accepts: every probe of it hangs until its timeout."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its children (the shards)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid, *children(pid)]
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def targets_config(
    healthy_url: str, count: int, interval: float, timeout: float, hung_url: str = "", hung: int = 0
) -> WarroomConfig:
    targets = [{"name": f"web{i}", "http": healthy_url} for i in range(count)]
    targets += [{"name": f"hung{i}", "http": hung_url} for i in range(hung)]
    return parse_config(
        {
            "defaults": {
                "interval": interval,
                "timeout": timeout,
                "degraded_latency": "250ms",
            },
            "targets": targets,
        }
    )


class Worker:
    """`python -m warroom.probe.worker` as the console's supervisor starts it."""

    def __init__(self, log: Path, config: WarroomConfig, shards: int | None) -> None:
        args = [sys.executable, "-m", "warroom.probe.worker", "--log", str(log)]
        args += ["--sample-interval", str(SAMPLE_INTERVAL)]
        if shards:
            args += ["--shards", str(shards)]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdin is not None
        self.process.stdin.write(config.model_dump_json().encode() + b"\n")
        self.process.stdin.flush()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stderr is not None
        err = self.process.stderr.read().decode().strip()
        if self.process.returncode != 0:
            raise SystemExit(f"bench_probe_nginx: worker exited {self.process.returncode}: {err}")


def window_events(log: Path, start: float, end: float) -> list[ev.BaseEvent]:
    return [e for e in read_events(log) if start <= e.time.timestamp() <= end]


def engine_figures(events: list[ev.BaseEvent], wall: float) -> dict[str, Any]:
    healths = [e for e in events if isinstance(e, ev.ProbeEngineHealth)]
    # Each shard's rate over its own health periods in the window, times the window: the
    # periods of two shards do not line up with each other or with the CPU window.
    rate = 0.0
    for shard in {h.shard for h in healths}:
        mine = [h for h in healths if h.shard == shard]
        rate += sum(h.probes for h in mine) / max(sum(h.period_s for h in mine), 1e-9)
    probes = round(rate * wall)
    p99s = [h.lag_p99_ms for h in healths if h.lag_p99_ms is not None]
    p50s = sorted(h.lag_p50_ms for h in healths if h.lag_p50_ms is not None)
    return {
        "shards": max((h.shards for h in healths), default=0),
        "probes": probes,
        "probes_per_s": round(probes / wall, 1),
        # Per health period (5 s, per shard): the median p50 and the worst p99.
        "lag_p50_ms": p50s[len(p50s) // 2] if p50s else None,
        "lag_p99_ms": max(p99s) if p99s else None,
        "missed_rounds": sum(h.missed_rounds for h in healths),
        "late": sum(h.late for h in healths),
        "slots_peak": sum(
            max((h.slots_peak for h in healths if h.shard == s), default=0)
            for s in {h.shard for h in healths}
        ),
    }


def run_worker(
    workdir: Path, config: WarroomConfig, warmup: float, duration: float, shards: int | None
) -> tuple[dict[str, Any], list[ev.BaseEvent], float]:
    """Probe `config` through the worker; figures over `duration` after `warmup`."""
    log = workdir / f"incident-{time.monotonic_ns()}.jsonl"
    IncidentLog.open(log, create=True).close()
    worker = Worker(log, config, shards)
    try:
        time.sleep(warmup)
        cpu0, start = tree_cpu(worker.process.pid), time.time()
        time.sleep(duration)
        cpu1, end = tree_cpu(worker.process.pid), time.time()
    finally:
        worker.close()
    events = window_events(log, start, end)
    figures = engine_figures(events, end - start)
    cpu = cpu1 - cpu0
    figures["cpu_percent"] = round(100 * cpu / (end - start), 1)
    figures["cpu_ms_per_probe"] = round(1000 * cpu / max(figures["probes"], 1), 3)
    return figures, events, start


async def drive_blackbox(
    port: int, nginx_url: str, count: int, interval: float, duration: float
) -> tuple[int, int]:
    """Request each target's probe once an interval, spread as warroom spreads them, as
    Prometheus scrapes would (keep-alive to the exporter); returns (answered, successful)."""
    probe_url = f"http://127.0.0.1:{port}/probe"
    answered = ok = 0
    connector = aiohttp.TCPConnector(limit=4000)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + duration
        tasks: set[asyncio.Task[None]] = set()
        params = {"module": "http_2xx", "target": nginx_url}

        async def one() -> None:
            nonlocal answered, ok
            try:
                async with session.get(probe_url, params=params) as response:
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                return
            answered += 1
            ok += b"probe_success 1" in body

        def fire(due: float) -> None:
            if due >= end:
                return
            task = loop.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            loop.call_at(due + interval, fire, due + interval)

        for i in range(count):
            phase = zlib.crc32(f"web{i}".encode()) / 2**32 * interval
            loop.call_at(start + phase, fire, start + phase)
        await asyncio.sleep(duration)
        if tasks:
            await asyncio.wait(set(tasks), timeout=10)
    return answered, ok


def mode_scale(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with nginx(workdir) as port:
        config = targets_config(
            f"http://127.0.0.1:{port}/health", args.targets, args.interval, args.timeout
        )
        figures, events, _ = run_worker(workdir, config, warmup(args), args.duration, args.shards)
    false = [e for e in events if isinstance(e, ev.ProbeStateChanged) and e.to_state != "up"]
    return {
        "bench": "probe_nginx_scale",
        "targets": args.targets,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "expected_per_s": round(args.targets / args.interval, 1),
        **figures,
        "false_transitions": len(false),
    }


def mode_hung(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with nginx(workdir) as port, hanging_listener() as hung_port:
        config = targets_config(
            f"http://127.0.0.1:{port}/status",
            args.targets,
            args.interval,
            args.timeout,
            hung_url=f"http://127.0.0.1:{hung_port}/health",
            hung=args.hung,
        )
        log = workdir / "incident-hung.jsonl"
        IncidentLog.open(log, create=True).close()
        worker = Worker(log, config, args.shards)
        try:
            time.sleep(args.interval * 2 + args.timeout + 1)
            fault = time.time()
            (workdir / "www" / "flag").unlink()  # nginx now answers 503
            time.sleep(args.duration)
        finally:
            worker.close()
    events = list(read_events(log))
    downs: dict[str, float] = {}
    for e in events:
        if (
            isinstance(e, ev.ProbeStateChanged)
            and e.target.startswith("web")
            and e.to_state == "down"
            and e.time.timestamp() >= fault
        ):
            downs.setdefault(e.target, e.time.timestamp() - fault)
    latencies = sorted(downs.values())
    bound = args.interval * 2 + args.timeout + 0.2
    after = [e for e in events if e.time.timestamp() >= fault]
    figures = engine_figures(after, args.duration)
    return {
        "bench": "probe_nginx_hung",
        "healthy": args.targets,
        "hung": args.hung,
        "interval_s": args.interval,
        "timeout_s": args.timeout,
        "detected": len(latencies),
        "detection_p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
        "detection_max_s": round(latencies[-1], 3) if latencies else None,
        "bound_s": round(bound, 3),
        "within_bound": bool(latencies) and latencies[-1] <= bound,
        **{k: figures[k] for k in ("shards", "probes_per_s", "lag_p99_ms", "missed_rounds")},
        "slots_peak": figures["slots_peak"],
    }


def mode_blackbox(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with nginx(workdir) as port:
        url = f"http://127.0.0.1:{port}/health"
        config = targets_config(url, args.targets, args.interval, args.timeout)
        ours, _, _ = run_worker(workdir, config, warmup(args), args.duration, args.shards)
        with blackbox(workdir, args.timeout) as (bb_port, bb_pid):
            asyncio.run(drive_blackbox(bb_port, url, 50, 0.1, 1.0))  # warm up
            cpu0 = tree_cpu(bb_pid)
            done, ok = asyncio.run(
                drive_blackbox(bb_port, url, args.targets, args.interval, args.duration)
            )
            cpu = tree_cpu(bb_pid) - cpu0
    theirs = round(1000 * cpu / max(done, 1), 3)
    return {
        "bench": "probe_nginx_vs_blackbox",
        "targets": args.targets,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "warroom_probes": ours["probes"],
        "warroom_cpu_ms_per_probe": ours["cpu_ms_per_probe"],
        "warroom_shards": ours["shards"],
        "warroom_missed_rounds": ours["missed_rounds"],
        # Fewer than expected: the exporter (or its requester) could not keep up on this
        # machine, and its CPU per probe is not comparable.
        "expected_probes": round(args.targets * args.duration / args.interval),
        "blackbox_probes": done,
        "blackbox_ok": ok,
        "blackbox_cpu_ms_per_probe": theirs,
        "cpu_ratio": round(ours["cpu_ms_per_probe"] / theirs, 3) if theirs else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("scale", "hung", "blackbox"), default="scale")
    parser.add_argument("--targets", type=int, default=1000, help="healthy HTTP targets")
    parser.add_argument("--hung", type=int, default=1000, help="hung targets (--mode hung)")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--shards", type=int, help="worker shards (default: the worker's)")
    args = parser.parse_args()
    args.timeout = min(args.timeout, args.interval) if args.mode != "hung" else args.timeout
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        workdir = Path(tmp)
        result = {"scale": mode_scale, "hung": mode_hung, "blackbox": mode_blackbox}[args.mode](
            args, workdir
        )
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    result["cores"] = os.cpu_count()
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
