"""Benchmark the shared store: 30 simulated responders plus a probe worker on one incident.

Starts its own PostgreSQL (Debian's binaries, fsync on, Unix socket), then for `--duration`
seconds: `--responders` responders (spread over `--procs` processes) each append a note at
random (Poisson, `--rate` events per minute in total), one probe worker appends a batch of
`--probe-batch` machine events every second, and one follower process follows the incident
(LISTEN + poll, checking and mirroring each row). Then a short saturation phase: every
responder, all at once when the steady phase ends, appends back to back for `--saturate`
seconds (`--follow-each`: each writer process also follows the incident, as every console
does; more CPU on this one machine). An append is timed around `PgStore.append`, what a
console waits for before it shows the note (its `SharedStore` adds a lock and no round
trip), on a connection that has appended before, as a console's has when an operator acts
(its first tick appends a presence heartbeat); what that first append on a new connection
costs is reported apart (`first_append_*`). Prints ONE JSON line: append p50/p99 (ms),
follower lag p50/p99 (ms, from the append's acknowledgement in the writer to
checked-and-mirrored in the follower; `_from_stamp`: from the event's `ts`, stamped before
the append was sent), events/s, the CPU seconds the client processes spent after start-up,
the load average, and with `--sample-server S` where the writers' backends were (lock wait,
WAL sync, ...) in the steady phase and in the saturated one.
The server keeps `fsync` and `synchronous_commit` on (an acknowledged append is on the
server's disk; `--no-fsync` only for a side figure of what the disk costs) and PostgreSQL's
default `commit_delay` 0: at a few commits in flight it would only add its delay to each.
Every process of the benchmark, the server included, shares this machine's cores: on two
cores, a loaded machine's scheduling shows in the p99 (`--procs` fewer for a side figure).

    nice .venv/bin/python tests/bench/bench_pg.py --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pg import APP_ROLE, PgServer, find_bindir

from warroom import events as ev

if TYPE_CHECKING:
    import psycopg


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def _ready() -> float:
    """Say this process has imported and connected; the main process answers `until`."""
    print("ready", flush=True)
    return float(sys.stdin.readline())


def _follow(url: str, from_seq: int, stop: threading.Event) -> None:
    """What a console does besides appending: follow (check and parse) every new row."""
    from warroom.store.follow import Follower

    follow = Follower(url, from_seq=from_seq)
    while not stop.is_set():
        follow.wait_and_poll(0.5)
    follow.close()


def writer(
    url: str, threads: int, rate_per_thread: float, saturate: float, follow_each: bool
) -> None:
    """One process of responders; prints {"lat": [...], "sat": [...], "acks": [[seq, t]...],
    "cpu": s}."""
    from warroom.store.pg import PgStore

    lat: list[float] = []
    sat: list[float] = []
    acks: list[tuple[int, float]] = []
    lock = threading.Lock()

    stores = [PgStore.open(url) for _ in range(threads)]
    # A console's first tick appends its presence heartbeat on the connection it opened
    # (`Session._tick_shared`), before any operator action: time warm connections, as the
    # operator meets them, and report what a first append on a new connection costs apart.
    firsts: list[float] = []
    for store in stores:
        t0 = time.perf_counter()
        store.append(ev.PresenceHeartbeat(machine="bench", session=f"{os.getpid()}"))
        firsts.append((time.perf_counter() - t0) * 1000)
    stop = threading.Event()
    heads = threading.Thread(target=_follow, args=(url, stores[0].last_seq + 1, stop), daemon=True)
    if follow_each:
        heads.start()
    until = _ready()
    cpu0 = _cpu()

    def responder(i: int) -> None:
        store = stores[i % threads]
        rng = random.Random(i)
        mine: list[float] = []
        mine_acks: list[tuple[int, float]] = []
        while True:
            pause = rng.expovariate(rate_per_thread)
            if time.time() + pause >= until:
                break
            time.sleep(pause)
            t0 = time.perf_counter()
            stored = store.append(ev.NoteAdded(text=f"responder {i}: looked at the dashboards"))
            mine.append((time.perf_counter() - t0) * 1000)
            mine_acks.append((stored.seq, time.time()))
        mine_sat: list[float] = []
        # Every responder starts the burst at the same moment, after the steady phase: one
        # already bursting while others still time the steady load would queue them behind it.
        time.sleep(max(0.0, until - time.time()))
        stop = time.time() + saturate
        while time.time() < stop:
            t0 = time.perf_counter()
            store.append(ev.NoteAdded(text=f"responder {i}: burst"))
            mine_sat.append((time.perf_counter() - t0) * 1000)
        with lock:
            lat.extend(mine)
            acks.extend(mine_acks)
            sat.extend(mine_sat)
        store.close()

    workers = [
        threading.Thread(target=responder, args=(os.getpid() * 100 + i,)) for i in range(threads)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    out = {"lat": lat, "sat": sat, "acks": acks, "firsts": firsts}
    print(json.dumps({**out, "cpu": round(_cpu() - cpu0, 3)}))


def prober(url: str, batch: int) -> None:
    from warroom.store.pg import PgStore

    store = PgStore.open(url)
    store.append(ev.PresenceHeartbeat(machine="bench", session="prober"))  # as in `writer`
    lat: list[float] = []
    acks: list[tuple[int, float]] = []
    until = _ready()
    cpu0 = _cpu()
    while time.time() < until:
        events = [
            ev.ProbeSamples(
                samples=[
                    ev.ProbeSample(
                        target=f"t{i}", state=ev.ProbeState.UP, ok=5, count=5, latency_ms=3.0
                    )
                ]
            )
            for i in range(batch)
        ]
        t0 = time.perf_counter()
        stored = store.append_many(events)
        lat.append((time.perf_counter() - t0) * 1000)
        acks += [(e.seq, time.time()) for e in stored]
        time.sleep(max(0.0, 1.0 - (time.perf_counter() - t0)))
    print(json.dumps({"lat": lat, "acks": acks, "cpu": round(_cpu() - cpu0, 3)}))


def follower(url: str, mirror: str) -> None:
    from warroom.store.follow import Follower

    follow = Follower(url, mirror=mirror)
    follow.poll()
    until = _ready()
    cpu0 = _cpu()
    lags: list[float] = []
    seen: list[tuple[int, float]] = []
    count = 0
    while time.time() < until:
        events = follow.wait_and_poll(1.0)
        now = time.time()
        for event in events:
            count += 1
            lags.append((now - ev.parse_ts(event.ts).timestamp()) * 1000)
            seen.append((event.seq, now))
    follow.close()
    out = {"lags": lags, "seen": seen, "count": count}
    print(json.dumps({**out, "cpu": round(_cpu() - cpu0, 3)}))


def sample_server(url: str, phases: list[tuple[float, dict[str, int]]], every: float) -> None:
    """Where the writers' backends are, sampled from `pg_stat_activity` (`--sample-server`)
    into each phase's counts until its end time: waiting for a lock (the incident's queue,
    the head row), holding a transaction open while the client works (`idle in
    transaction`), writing or syncing WAL at commit, or running."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for until, out in phases:
            _sample(conn, until, every, out)


def _sample(conn: psycopg.Connection[Any], until: float, every: float, out: dict[str, int]) -> None:
    while True:
        time.sleep(every)
        if time.time() >= until:  # a sample after the phase's end belongs to the next
            return
        for state, wait_type, wait in conn.execute(
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE application_name = 'warroom' AND state <> 'idle'"
        ):
            if state == "idle in transaction":
                key = "idle_in_transaction"
            elif wait_type == "Lock":
                key = f"lock_wait:{wait}"
            elif wait_type in ("IO", "LWLock") and wait and "WAL" in wait:
                key = f"wal:{wait}"
            elif wait_type is None:
                key = "running"
            else:
                key = f"{wait_type}:{wait}"
            out[key] = out.get(key, 0) + 1
        out["samples"] = out.get("samples", 0) + 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--mirror", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--responders", type=int, default=30)
    parser.add_argument("--procs", type=int, default=6)
    parser.add_argument("--rate", type=float, default=400.0, help="notes per minute, all told")
    parser.add_argument("--probe-batch", type=int, default=20)
    parser.add_argument("--saturate", type=float, default=5.0)
    parser.add_argument(
        "--follow-each",
        action="store_true",
        help="each writer process also follows the incident, as every console does",
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="a side figure: the server without fsync (what the disk costs; not a target)",
    )
    parser.add_argument(
        "--sample-server",
        type=float,
        default=0.0,
        metavar="S",
        help="sample pg_stat_activity every S seconds (where the appends wait)",
    )
    args = parser.parse_args()
    per_proc = max(1, args.responders // args.procs)
    if args.role == "writer":
        rate = args.rate / 60.0 / args.responders
        writer(args.url, per_proc, rate, args.saturate, args.follow_each)
        return 0
    if args.role == "prober":
        prober(args.url, args.probe_batch)
        return 0
    if args.role == "follower":
        follower(args.url, args.mirror)
        return 0

    bindir = find_bindir()
    if bindir is None:
        print(json.dumps({"bench": "pg", "error": "no PostgreSQL binaries"}))
        return 1
    server = PgServer(bindir, fsync=not args.no_fsync)
    try:
        server.init()
        from warroom.store.pg import PgStore
        from warroom.store.schema import init_schema

        init_schema(server.admin_url(), grant_to=APP_ROLE)
        url = server.url("bench")
        PgStore.open(url).close()
        me = [sys.executable, __file__, "--url", url]
        common = [
            "--responders", str(args.responders), "--procs", str(args.procs),
            "--rate", str(args.rate), "--probe-batch", str(args.probe_batch),
            "--duration", str(args.duration),
            "--saturate", str(args.saturate),
            *(["--follow-each"] if args.follow_each else []),
        ]  # fmt: skip
        mirror = Path(tempfile.mkdtemp(prefix="warroom-bench-")) / "mirror.jsonl"
        procs = [
            subprocess.Popen(
                [*me, "--role", "follower", "--mirror", str(mirror), *common],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        ]
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
        procs.append(subprocess.Popen([*me, "--role", "prober", *common], **pipes))  # type: ignore[call-overload]
        procs += [
            subprocess.Popen([*me, "--role", "writer", *common], **pipes)  # type: ignore[call-overload]
            for _ in range(args.procs)
        ]
        for proc in procs:  # all imported and connected: the clock starts now
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        steady_end = time.time() + 0.2 + args.duration
        until = f"{steady_end}\n".encode()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(until)
            proc.stdin.flush()
        samples: dict[str, int] = {}
        saturated_samples: dict[str, int] = {}
        if args.sample_server > 0:
            sampler = threading.Thread(
                target=sample_server,
                args=(
                    server.admin_url(),
                    [(steady_end, samples), (steady_end + args.saturate, saturated_samples)],
                    args.sample_server,
                ),
                daemon=True,
            )
            sampler.start()
        outs = [json.loads(p.communicate()[0] or b"{}") for p in procs]
        follow, probe, writers = outs[0], outs[1], outs[2:]
        lat = [x for w in writers for x in w.get("lat", [])]
        sat = [x for w in writers for x in w.get("sat", [])]
        firsts = [x for w in writers for x in w.get("firsts", [])]
        acked = {seq: t for out in outs[1:] for seq, t in out.get("acks", [])}
        from_ack = [(t - acked[seq]) * 1000 for seq, t in follow.get("seen", []) if seq in acked]
        total = PgStore.open(url, create=False)
        events = total.last_seq
        total.close()
        result = {
            "bench": "pg",
            "duration_s": args.duration,
            "responders": per_proc * args.procs,
            "rate_per_min": args.rate,
            "probe_batch": args.probe_batch,
            "append_p50_ms": _pct(lat, 0.50),
            "append_p99_ms": _pct(lat, 0.99),
            "first_append_p50_ms": _pct(firsts, 0.50),
            "first_append_max_ms": _pct(firsts, 1.0),
            "probe_batch_p50_ms": _pct(probe.get("lat", []), 0.50),
            "probe_batch_p99_ms": _pct(probe.get("lat", []), 0.99),
            "follower_lag_p50_ms": _pct(from_ack, 0.50),
            "follower_lag_p99_ms": _pct(from_ack, 0.99),
            "follower_lag_from_stamp_p50_ms": _pct(follow.get("lags", []), 0.50),
            "follower_lag_from_stamp_p99_ms": _pct(follow.get("lags", []), 0.99),
            "followed": follow.get("count"),
            "appends": len(lat),
            "events_per_s": round((events - len(sat) - len(firsts) - 1) / args.duration, 1),
            "saturated_appends_per_s": round(len(sat) / args.saturate, 1) if sat else None,
            "saturated_p50_ms": _pct(sat, 0.50),
            "saturated_p99_ms": _pct(sat, 0.99),
            "events": events,
            "fsync": not args.no_fsync,
            "follow_each": args.follow_each,
            "cpu_s": {
                "writers": round(sum(w.get("cpu", 0) for w in writers), 2),
                "prober": probe.get("cpu"),
                "follower": follow.get("cpu"),
            },
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            **({"server_samples": samples} if samples else {}),
            **({"saturated_server_samples": saturated_samples} if saturated_samples else {}),
        }
        print(json.dumps(result))
    finally:
        server.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
