"""Run `warroom.log.verify.verify_log` in a second process when the log is big.

Checking the chain reads and hashes every line: seconds of CPU on a million-event log. In a
thread it would hold the GIL against the replay screen or the report being built, so a big
log is verified in a worker process instead (forked when the caller has a single thread,
as the CLI does; spawned otherwise, as in the TUI). Small logs are verified in-process.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from warroom.log.verify import VerifyResult, verify_log

#: Below this size a second process costs more than it saves.
PARALLEL_VERIFY_BYTES = 16 << 20


class VerifyJob:
    """A chain check started at construction; `result()` waits for its `VerifyResult`."""

    def __init__(self, path: Path, *, parallel_from: int | None = None) -> None:
        threshold = PARALLEL_VERIFY_BYTES if parallel_from is None else parallel_from
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[Any] | None = None
        self._result: VerifyResult | None = None
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size >= threshold:
            # fork is only safe while this process has a single thread.
            single = threading.active_count() == 1
            method = "fork" if single and _can("fork") else "spawn"
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method))
            self._future = self._pool.submit(verify_log, path)
        else:
            self._result = verify_log(path)

    @property
    def in_process(self) -> bool:
        """True when the check ran here rather than in a worker process."""
        return self._future is None

    def result(self) -> VerifyResult:
        if self._future is not None:
            return self._future.result()
        assert self._result is not None
        return self._result

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _can(method: str) -> bool:
    return method in multiprocessing.get_all_start_methods()
