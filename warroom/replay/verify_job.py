"""Run `warroom.log.verify.verify_log` in a second process when the log is big.

Checking the chain reads and hashes every line: seconds of CPU on a million-event log. In a
thread it would hold the GIL against the replay screen or the report being built, so a big
log is verified by a child Python (`python -m warroom.replay.verify_job LOG`, which prints the
`VerifyResult` as JSON). A plain subprocess rather than multiprocessing: it works the same
from the CLI and from the TUI (no fork with threads, no re-import of `__main__`). Small logs
are verified in-process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warroom.errors import WarroomError
from warroom.log.verify import VerifyResult, verify_log
from warroom.processes import kill_group

#: Below this size a second process costs more than it saves.
PARALLEL_VERIFY_BYTES = 16 << 20


class VerifyJob:
    """A chain check started at construction; `result()` waits for its `VerifyResult`."""

    def __init__(self, path: Path, *, parallel_from: int | None = None) -> None:
        threshold = PARALLEL_VERIFY_BYTES if parallel_from is None else parallel_from
        self.path = path
        self._proc: subprocess.Popen[bytes] | None = None
        self._result: VerifyResult | None = None
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size >= threshold:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "warroom.replay.verify_job", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Its range checkers are its children: one group, ended as one.
                start_new_session=True,
            )
        else:
            self._result = verify_log(path)

    @property
    def in_process(self) -> bool:
        """True when the check ran here rather than in a child process."""
        return self._proc is None

    def result(self) -> VerifyResult:
        """The outcome; `WarroomError` (one line) if the log could not be checked at all."""
        if self._proc is not None and self._result is None:
            out, err = self._proc.communicate()
            if self._proc.returncode != 0:
                lines = err.decode("utf-8", "replace").strip().splitlines()
                raise WarroomError(lines[-1] if lines else f"{self.path}: chain check failed")
            self._result = VerifyResult.model_validate_json(out)
        assert self._result is not None
        return self._result

    def shutdown(self) -> None:
        """Stop the child if its result is no longer wanted."""
        if self._proc is not None and self._proc.poll() is None:
            kill_group(self._proc.pid)
            self._proc.communicate()


def main(argv: list[str]) -> int:
    """Child side: verify one log and print the result as JSON (errors: one line, exit 1)."""
    if len(argv) != 1:
        print("usage: python -m warroom.replay.verify_job LOG", file=sys.stderr)
        return 2
    try:
        result = verify_log(argv[0])
    except WarroomError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    sys.stdout.write(result.model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
