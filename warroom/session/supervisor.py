"""The probe worker's keeper: starts `warroom.probe.worker`, restarts it with backoff when it
dies, says why it stopped, and tells the session which targets it probes and how often.

The worker is a child process tied to this one by its stdin (see `probe/worker.py`): when
the console goes, the pipe closes and the worker flushes and exits. While it runs, its
targets' intervals are what freshness is judged against; while it does not, every target is
stale (`status` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from warroom.config import WarroomConfig
from warroom.events import utc_now
from warroom.store.url import is_url

#: Seconds to wait before each restart in a row; the last one repeats.
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: A worker that ran this long counts as healthy: the next restart starts the backoff over.
HEALTHY_AFTER_S = 30.0
#: How much of the worker's stderr is kept (its last words are what is shown).
STDERR_TAIL = 4096


class ProbeSupervisor:
    """Runs the probe worker for `config`'s targets, writing to `log_path`, until stopped."""

    def __init__(
        self,
        config: WarroomConfig,
        log_path: str | Path,
        *,
        sample_interval: float = 5.0,
        on_problem: Callable[[str], None] | None = None,
        on_change: Callable[[], None] | None = None,
        backoff: Sequence[float] = BACKOFF,
        healthy_after: float = HEALTHY_AFTER_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        # A URL (shared incident) is passed on as it is; a file by its absolute path.
        text = str(log_path)
        self.log_path: str | Path = text if is_url(text) else Path(text).resolve()
        self.sample_interval = sample_interval
        self.on_problem = on_problem
        self.on_change = on_change
        self.backoff = tuple(backoff)
        self.healthy_after = healthy_after
        self.clock = clock
        #: Deaths since the worker last ran `healthy_after` seconds (what the problem counts).
        self.deaths = 0
        self.targets = config.resolved_targets()
        #: Seconds between results of each target as the console sees them (samples come
        #: every `sample_interval`, so no target is fresher than that).
        self._intervals = {t.name: max(t.interval, sample_interval) for t in self.targets}
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._status = "no targets to probe" if not self.targets else "probe engine starting"

    # -- what the session reads ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    @property
    def status(self) -> str:
        """Why no engine runs now ("" while one does)."""
        return "" if self.running else self._status

    def intervals(self) -> Mapping[str, float]:
        return self._intervals if self.running else {}

    def planned_intervals(self) -> Mapping[str, float]:
        """The targets' intervals whether or not this worker runs (another console may probe)."""
        return self._intervals

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a worker running until cancelled; each death is reported, then restarted."""
        if not self.targets:
            return
        failures = 0
        try:
            while True:
                started = time.monotonic()
                why = await self._run_once()
                if time.monotonic() - started >= self.healthy_after:
                    failures = 0
                pause = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                self.deaths += 1
                self._set_status(f"probe worker stopped ({why}); restarting in {pause:g}s")
                self._problem(
                    f"probe engine restarted {self.deaths}× — last at "
                    f"{self.clock():%H:%M:%S}: {why}"
                )
                await asyncio.sleep(pause)
                self._set_status(f"probe worker stopped ({why}); restarting")
        finally:
            await self.stop()

    async def _run_once(self) -> str:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "warroom.probe.worker",
            "--log",
            str(self.log_path),
            "--sample-interval",
            str(self.sample_interval),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self.process = worker
        self.starts += 1
        self._changed()
        assert worker.stdin is not None and worker.stderr is not None
        errors = b""
        healthy = asyncio.get_running_loop().call_later(self.healthy_after, self._healthy, worker)
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                worker.stdin.write(self.config.model_dump_json().encode() + b"\n")
                await worker.stdin.drain()
            while chunk := await worker.stderr.read(4096):
                errors = (errors + chunk)[-STDERR_TAIL:]
            code = await worker.wait()
        except asyncio.CancelledError:
            await self.stop()
            raise
        finally:
            healthy.cancel()
        self._changed()
        lines = errors.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else "no message"
        return f"exit {code}: {detail}"

    async def stop(self, grace: float = 3.0) -> None:
        """Close the worker's stdin (it flushes and exits), then TERM, then KILL."""
        worker = self.process
        if worker is None or worker.returncode is not None:
            return
        if worker.stdin is not None:
            worker.stdin.close()
        for stop in (None, worker.terminate, worker.kill):
            if stop is not None:
                with contextlib.suppress(ProcessLookupError):
                    stop()
            try:
                await asyncio.wait_for(worker.wait(), grace)
                break
            except TimeoutError:
                continue
        self._set_status("probe engine stopped")

    def _set_status(self, text: str) -> None:
        self._status = text
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _healthy(self, worker: asyncio.subprocess.Process) -> None:
        """The worker has run long enough to count as healthy: its restarts are no longer a
        problem."""
        if self.process is worker and worker.returncode is None and self.deaths:
            self.deaths = 0
            self._problem("")

    def _problem(self, text: str) -> None:
        """The engine's one current problem (replacing the last; "" when resolved)."""
        if self.on_problem is not None:
            self.on_problem(text)
