"""The console session: the one owner of the event store, the folded state and the policies.

Everything the console shows comes from here: events are appended to the store (off the
event loop, in submission order, by one writer thread), folded through the pure reducer,
the pure policies run after the fold (step verifications, runbook suggestions, status-update
reminders, probe freshness), and subscribers are told. The Textual app is one subscriber; it
turns keys into intents and state into pixels and nothing else. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from warroom import events as ev
from warroom.controls.service import ControlService
from warroom.events import BaseEvent, utc_now
from warroom.identity import default_actor
from warroom.log.store import EventStore, LogError, LogFileGone, LogFollower
from warroom.runbooks.model import Runbook
from warroom.runbooks.suggest import ProbeIndex
from warroom.session import policies
from warroom.session import shared as shared_mod
from warroom.session.freshness import Freshness, assess
from warroom.session.levers import LeverReadings, ServiceLoad, readings
from warroom.session.supervisor import ProbeSupervisor
from warroom.state import IncidentState, reduce
from warroom.store.lease import ProbeLease
from warroom.store.team import Heartbeat, Team, confirmation_problem, reduce_team

if TYPE_CHECKING:
    from warroom.alerts.intake import AlertIntake

__all__ = ["Change", "ConsoleSession", "EventStore", "Follower", "ProbeSource"]

_T = TypeVar("_T")
#: Seconds between this console's presence heartbeats on a shared incident.
HEARTBEAT_S = 10.0
Clock = Callable[[], datetime]


class Follower(Protocol):
    """Brings in what other writers appended to the store (`warroom note`, probe workers)."""

    def poll(self, limit: int | None = None) -> list[BaseEvent]:
        """The events stored since the last poll, oldest first ([] when none)."""
        ...


class ProbeSource(Protocol):
    """What the session needs to know of the probe engine to judge freshness."""

    def intervals(self) -> Mapping[str, float]:
        """Target -> seconds between its results, for the targets probed now ({} if none)."""
        ...

    @property
    def status(self) -> str:
        """Why no engine runs ("" while one does)."""
        ...


@dataclass(frozen=True, slots=True)
class Change:
    """What subscribers are told: the state moved on (`operator`: by this console's action, so
    repaint now), or a problem, error or reminder to show the responder."""

    kind: Literal["state", "problem", "error", "reminder", "freshness", "shared"]
    text: str = ""
    title: str = ""
    operator: bool = False


Listener = Callable[[Change], None]


class ConsoleSession:
    """One incident's live session over an `EventStore` (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        *,
        follower: Follower | None = None,
        clock: Clock = utc_now,
        actor: str | None = None,
        runbooks: Mapping[str, Runbook] | None = None,
        status_intervals: Mapping[str, float] | None = None,
        read_only: bool = False,
    ) -> None:
        self.store = store
        path = getattr(store, "path", None)
        self.path: Path | None = Path(path) if path is not None else None
        #: The follower on a shared incident (None for a file log).
        self.feed: shared_mod.SharedFeed | None = None
        if follower is None and shared_mod.is_shared(store):
            self.feed = shared_mod.SharedFeed(store, lambda: self.state.last_seq)  # type: ignore[arg-type]
            follower = self.feed
        elif follower is None and self.path is not None:
            follower = LogFollower(self.path, on_bad=self._bad_line)
        self.follower = follower
        self.clock = clock
        self.actor = actor or default_actor()
        self.runbooks: dict[str, Runbook] = dict(runbooks or {})
        self.status_intervals = dict(status_intervals or policies.status_intervals())
        self.read_only = read_only
        self.state = IncidentState()
        self.suggested: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self._keyed_problems: dict[str, str] = {}
        self.freshness = Freshness()
        #: The probe engine whose intervals and status decide freshness (None: no engine).
        self.probes: ProbeSource | None = None
        #: When each target last had a result (from `probe_samples` / `probe_state_changed`).
        self.seen: dict[str, datetime] = {}
        #: Every target's service and state, kept per fold for the policies.
        self.probe_index = ProbeIndex()
        self._listeners: list[Listener] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warroom-writer")
        self._last_write: Future[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._settle_pending = False
        self._bad: frozenset[tuple[str, str]] | None = None
        self._verify_sent: dict[tuple[str, str], bool] = {}
        self._reminded_for = ""
        #: The levers' service, once a job attached one (see `session/levers.py`).
        self.controls: ControlService | None = None
        self._jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        #: A service's load now (goodput, queue, capacity), where the levers' service can
        #: tell (the simulated fleet; see `session/levers.py`).
        self.service_load: Callable[[str], Awaitable[ServiceLoad]] | None = None
        #: The Alertmanager intake, once its job started (see `session/alerts.py`).
        self.alert_intake: AlertIntake | None = None
        self._running: list[asyncio.Task[None]] = []
        #: Who is on this incident and the changes waiting for a second responder.
        self.team = Team()
        #: The probe lease's runner on a shared incident (see `attach_probes`).
        self.leased: shared_mod.LeasedProbes | None = None
        self.heartbeat: Heartbeat | None = None
        self._generation = 0
        self._status: Any = None
        self._poll_soon = False
        #: `[incident] two_person`: every dangerous lever needs a second responder.
        self.two_person = False
        if self.feed is not None:
            self._generation = int(getattr(store, "generation", 0))
            self.heartbeat = Heartbeat(_machine(self.actor), uuid.uuid4().hex[:8], HEARTBEAT_S)
            self.feed.on_events = self._feed_woke
            self.add_job("shared incident", self.feed.run)
        #: Why nothing more can be recorded (the log file was replaced or deleted), or "".
        self.log_gone = ""
        #: Reads and folds other writers' events off the event loop (`poll_soon`).
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warroom-reader")
        self._reading: Future[_Folded] | None = None
        #: Serialises the follower between the reader thread and a poll on the loop.
        self._follow_lock = threading.Lock()
        #: Bad lines the reader thread met, said on the loop (listeners paint).
        self._bad_lines: list[LogError] = []
        self._on_reader = threading.local()

    # -- subscribers --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every change; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _tell(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    def report_problem(self, text: str) -> None:
        """A problem the responder must see (the console carries on)."""
        self.problems.append(text)
        self._tell(Change("problem", text, "Problem"))

    def set_problem(self, key: str, text: str) -> None:
        """The one current problem of `key` (a restarting worker): it replaces the last one
        in place, so the problems line says it once; "" clears it (resolved)."""
        old = self._keyed_problems.pop(key, None)
        if text:
            self._keyed_problems[key] = text
            if old in self.problems:
                self.problems[self.problems.index(old)] = text
            else:
                self.problems.append(text)
            self._tell(Change("problem", text, "Problem"))
        elif old is not None:
            with contextlib.suppress(ValueError):
                self.problems.remove(old)
            self._tell(Change("problem"))

    def _bad_line(self, error: LogError) -> None:
        """A junk line among other writers' events: said once (file:line), then skipped; met
        on the reader thread, it is said on the loop when the fold is committed."""
        if getattr(self._on_reader, "active", False):
            self._bad_lines.append(error)
            return
        text = f"skipped a bad log line: {error}"
        if text not in self.problems:
            self.report_problem(text)

    def _gone(self, exc: LogFileGone) -> None:
        """Stop acknowledging: the file written to is no longer the one anyone reads."""
        if self.log_gone:
            return
        where = self.path if self.path is not None else "the incident log"
        self.log_gone = (
            f"LOG FILE GONE: {where} was replaced or deleted under this console; "
            f"nothing more is recorded ({exc}). Restart the console on the right log."
        )
        self.report_problem(self.log_gone)

    # -- writing: one thread, submission order ------------------------------------------------

    def _submit(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Run `fn(*args)` on the writer thread after everything submitted before it."""
        future = self._writer.submit(fn, *args)
        self._last_write = future
        return asyncio.wrap_future(future)

    def _stamp(self, event: BaseEvent) -> BaseEvent:
        """Time and actor from this console (its injected clock), unless already set."""
        update: dict[str, str] = {}
        if not event.actor:
            update["actor"] = self.actor
        if not event.ts:
            update["ts"] = ev.format_ts(self.clock())
        return event.model_copy(update=update) if update else event

    def record(self, event: BaseEvent) -> asyncio.Task[BaseEvent | None]:
        """Append an operator event (fsynced), then fold it; the task gives it stamped, or
        None if it could not be written (the subscribers were told why).

        The write is queued at once, so two calls are stored in the order they were made.
        """
        if self.read_only:
            return self._spawn(self._refused("read-only: nothing is written"))
        if self.log_gone:
            return self._spawn(self._refused(f"not recorded: {self.log_gone}"))
        write = self._submit(self.store.append, self._stamp(event))
        return self._spawn(self._after_write(write, operator=True))

    def record_machine(self, events: Sequence[BaseEvent]) -> asyncio.Task[list[BaseEvent]]:
        """Append machine events (group-written, not fsynced one by one), then fold them."""
        if self.read_only or self.log_gone or not events:
            return self._spawn(_nothing())
        stamped = [self._stamp(e) for e in events]
        write = self._submit(self.store.append_many, stamped, False)
        return self._spawn(self._after_machine_write(write))

    async def _refused(self, why: str) -> None:
        self._tell(Change("error", why, "Not recorded"))
        return None

    async def _after_write(
        self, write: asyncio.Future[BaseEvent], *, operator: bool
    ) -> BaseEvent | None:
        try:
            stamped = await write
        except LogFileGone as exc:
            self._gone(exc)
            self._tell(Change("error", f"not recorded: {self.log_gone}", "Not recorded"))
            return None
        except Exception as exc:
            self._tell(Change("error", f"not recorded: {exc}", "Log write failed"))
            return None
        self.ingest([stamped])
        self.settle()
        self._tell(Change("state", operator=operator))
        return stamped

    async def _after_machine_write(self, write: asyncio.Future[list[BaseEvent]]) -> list[BaseEvent]:
        try:
            stamped = await write
        except LogFileGone as exc:
            self._gone(exc)
            return []
        except Exception as exc:
            self.report_problem(f"log write failed: {exc}")
            return []
        self.ingest(stamped)
        self.settle()  # the policies see what was folded before anyone is told
        self._tell(Change("state"))
        return stamped

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self) -> None:
        """Wait until every write submitted so far, and the read in flight, is folded."""
        while self._reading is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._reading)
            await asyncio.sleep(0)  # its commit, scheduled from the reader thread
        while self._tasks or (self._last_write is not None and not self._last_write.done()):
            if self._last_write is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(self._last_write)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- reading and folding ------------------------------------------------------------------

    def poll(self) -> bool:
        """Fold what other writers stored since the last poll, run the policies, tell the
        subscribers; True if the state changed."""
        before = self.state
        self._drain()
        self.settle()
        changed = self.state is not before
        if changed:
            self._tell(Change("state"))
        return changed

    def poll_soon(self) -> None:
        """Read, parse and fold what other writers stored on the reader thread, and commit
        the result on the loop (then settle and tell, as `poll` does).

        A 5,000-target console parses and folds tens of milliseconds of probe results a
        second; done on the loop, a key pressed meanwhile waits for all of it. The reducer
        is pure and its structures are shared safely between threads, so the fold starts
        from the state as it is now; if this console folded its own events in the meantime,
        the commit folds the batch again onto the newer state (seqs already there are
        skipped). A shared incident's feed keeps its own order, so it is polled here.
        """
        if self.feed is not None or self.follower is None:
            self.poll()
            return
        if self._reading is not None:
            return  # one read at a time: the next tick reads what this one did not
        loop = asyncio.get_running_loop()
        future = self._reader.submit(self._read_and_fold, self.state, self.team)
        self._reading = future
        future.add_done_callback(lambda done: loop.call_soon_threadsafe(self._read_done, done))

    def _read_and_fold(self, state: IncidentState, team: Team) -> _Folded:
        """On the reader thread: the follower's new events folded onto (`state`, `team`)."""
        self._on_reader.active = True
        try:
            with self._follow_lock:
                events = self.follower.poll() if self.follower is not None else []
        finally:
            self._on_reader.active = False
        return _fold_events(state, team, events)

    def _read_done(self, future: Future[_Folded]) -> None:
        if self._reading is not future:
            return  # a poll on the loop took it already
        before = self.state
        self._take_read()
        self.settle()
        if self.state is not before:
            self._tell(Change("state"))

    def _take_read(self) -> None:
        """Commit the reader thread's fold (waiting for it if it is still running)."""
        future, self._reading = self._reading, None
        if future is None:
            return
        try:
            folded = future.result()
        except Exception as exc:
            self.report_problem(str(exc))
            folded = None
        bad, self._bad_lines = self._bad_lines, []
        for error in bad:
            self._bad_line(error)
        if folded is None:
            return
        if folded.base is self.state and folded.base_team is self.team:
            self._commit(folded)
        else:
            self._fold(folded.events)  # this console folded its own events meanwhile

    def ingest(self, events: Iterable[BaseEvent]) -> None:
        """Fold stored events into the state (skipping any already folded)."""
        batch = list(events)
        if not batch:
            return
        if batch[0].seq > self.state.last_seq + 1:
            self._drain()  # another writer stored events in between: fold those first
            if self.feed is not None and batch[0].seq > self.state.last_seq + 1:
                self.feed.hold(batch)  # the feed brings those in between within moments
                return
        self._fold(batch)

    def _drain(self) -> None:
        self._take_read()  # what the reader thread read comes first
        if self.follower is None:
            return
        if self.feed is not None:
            self._refold_if_merged()
        try:
            with self._follow_lock:
                events = self.follower.poll()
        except Exception as exc:
            self.report_problem(str(exc))
            return
        self._fold(events)

    def _fold(self, events: Iterable[BaseEvent]) -> None:
        self._commit(_fold_events(self.state, self.team, events))

    def _commit(self, folded: _Folded) -> None:
        """Make `folded` (computed from the current state) the session's state."""
        before, state = self.state, folded.state
        self.team = folded.team
        self.seen.update(folded.seen)
        if state is before:
            return
        self.state = state
        if state.probes is not before.probes:
            self._index_probes(before, state, folded.named, folded.sampled)
        if self.controls is not None and state.controls is not before.controls:
            self.controls.sync_auto_reverts(state)  # changes another console made, too
        if (
            state.probes is not before.probes
            or state.runbooks is not before.runbooks
            or state.alerts is not before.alerts
        ):
            self._settle_pending = True

    def _index_probes(
        self, before: IncidentState, state: IncidentState, named: set[str], sampled: bool
    ) -> None:
        """Bring `probe_index` up to date with the targets whose state or service moved.

        Only a state change (and a target's first known state from its samples) moves a
        target between the reducer's service counts, so samples that leave `services` as
        it was change nothing here: a fold costs the targets named in it, not all of them.
        """
        index, probes = self.probe_index, state.probes
        touched = named
        if len(index.state_of) != len(probes) or (
            sampled and state.services is not before.services
        ):
            known = index.state_of
            touched = named | {t for t in probes if known.get(t, "unknown") == "unknown"}
        for target in touched:
            view = probes.get(target)
            if view is not None:
                index.put(target, view)

    # -- a shared incident --------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Goes up each time the shared order was re-folded (offline events merged)."""
        return self._generation

    def _refold_if_merged(self) -> None:
        """After a merge the shared order differs from what was folded: fold it again."""
        generation = int(getattr(self.store, "generation", 0))
        if generation == self._generation:
            return
        events = list(self.store.read())
        if (events[-1].seq if events else 0) < getattr(self.store, "last_seq", 0):
            # The mirror has not caught up with the merge yet: look again shortly, whether or
            # not another event arrives to wake the feed.
            with contextlib.suppress(RuntimeError):  # no running loop: the next poll will
                asyncio.get_running_loop().call_later(0.2, self._poll_now)
            return
        self._generation = generation
        self.state, self.team, self.seen = IncidentState(), Team(), {}
        self.probe_index = ProbeIndex()
        self._fold(events)
        self._settle_pending = True

    def _feed_woke(self) -> None:
        if self._poll_soon:
            return
        self._poll_soon = True
        asyncio.get_running_loop().call_soon(self._poll_now)

    def _poll_now(self) -> None:
        self._poll_soon = False
        self.poll()

    def shared_status(self) -> Any:
        """The shared store's `SharedStatus` (None for a file log)."""
        status = getattr(self.store, "status", None)
        return status() if self.feed is not None and status is not None else None

    def shared_view(self, now: datetime | None = None) -> shared_mod.SharedView | None:
        """What the header shows of the shared incident (None for a file log)."""
        status = self.shared_status()
        if status is None:
            return None
        leased = self.leased
        return shared_mod.shared_view(
            status,
            self.team,
            now or self.clock(),
            leased.holder if leased is not None else "",
            leased.holding if leased is not None else False,
        )

    def _tick_shared(self) -> None:
        status = self.shared_status()
        # Offline, nobody can see a heartbeat; merged later it would only be noise.
        if self.heartbeat is not None and not self.read_only and status.online:
            beat = self.heartbeat.due(time.monotonic())
            if beat is not None:
                self.record_machine([beat])
        if status != self._status:
            before, self._status = self._status, status
            self._tell(Change("shared"))
            tampered = status.tampered_seq
            if tampered is not None and getattr(before, "tampered_seq", None) != tampered:
                self.report_problem(f"shared log TAMPERED at seq {tampered}: {status.error}")

    def pending_confirmations(self) -> list[Any]:
        """The changes waiting for a second responder that this console's actor may confirm."""
        return [h for h in self.team.held.values() if h.requested_by != self.actor]

    def confirm(self, request_id: str, reason: str) -> asyncio.Task[BaseEvent | None]:
        """Confirm another responder's `needs_second` change (refused when the rule forbids)."""
        problem = confirmation_problem(self.team, request_id, self.actor, reason)
        if problem is not None:
            return self._spawn(self._refused(problem))
        return self.record(
            ev.ControlConfirmed(request_id=request_id, reason=" ".join(reason.split()))
        )

    def may_apply(self, request_id: str) -> bool:
        """The two-person rule for `ControlService`: True once a second responder confirmed
        (not merely "not held": the request itself may not be folded yet)."""
        return request_id in self.team.confirmed and self.team.may_apply(request_id)

    def needs_second(self, spec: Any) -> bool:
        """Whether a change of `spec` waits for a second responder (per lever, or
        `[incident] two_person` for every dangerous lever)."""
        return bool(spec.needs_second or (self.two_person and spec.dangerous))

    # -- policies ---------------------------------------------------------------------------

    def settle(self) -> None:
        """Suggestions and step verifications for the probes folded since the last settle."""
        if not self._settle_pending:
            return
        self._settle_pending = False
        state = self.state
        bad = policies.bad_signature(state, self.probe_index)
        if bad != self._bad:
            self._bad = bad
            self.suggested = policies.suggestions(self.runbooks, state, self.probe_index)
        if self.read_only:
            return
        changes = []
        for event in policies.verifications(self.runbooks, state):
            key = (event.runbook, event.step)
            if self._verify_sent.get(key) != event.holds:
                self._verify_sent[key] = event.holds
                changes.append(event)
        for key in [k for k, holds in self._verify_sent.items() if self._recorded(k, holds)]:
            del self._verify_sent[key]
        if changes:
            self.record_machine(changes)

    def _recorded(self, key: tuple[str, str], holds: bool) -> bool:
        progress = self.state.runbooks.get(key[0])
        view = progress.steps.get(key[1]) if progress is not None else None
        return (view.verified if view is not None else False) == holds

    def tick(self, now: datetime | None = None) -> None:
        """Once a second: freshness and the status-update reminder move on without events."""
        now = now or self.clock()
        if self.feed is not None:
            self._tick_shared()
        self.update_freshness(now)
        marker = policies.reminder_marker(self.state, now, self.status_intervals)
        if marker and marker != self._reminded_for:
            self._reminded_for = marker
            self._tell(
                Change(
                    "reminder",
                    f"Status update due for {self.state.severity} — press c to write one",
                    "Status update",
                )
            )

    def update_freshness(self, now: datetime | None = None) -> Freshness:
        """Re-judge which targets' data is live; tells subscribers when that changed."""
        now = now or self.clock()
        probes = self.probes
        intervals = probes.intervals() if probes is not None else {}
        status = probes.status if probes is not None else ""
        fresh = assess(self.state.probes, self.seen, now, intervals, status)
        if fresh != self.freshness:
            self.freshness = fresh
            self._tell(Change("freshness"))
        return fresh

    def status_update_due(self, now: datetime) -> tuple[datetime | None, bool]:
        return policies.status_update_due(self.state, now, self.status_intervals)

    # -- what the session runs --------------------------------------------------------------

    def attach_probes(self, supervisor: ProbeSupervisor, lease_ttl: float | None = None) -> None:
        """Judge freshness by `supervisor`'s worker and run it with the session; on a shared
        incident only while this console holds the probing lease (the others follow)."""
        supervisor.on_problem = partial(self.set_problem, "probe engine")
        supervisor.clock = self.clock
        supervisor.on_change = self._probes_changed
        if self.feed is None:
            self.probes = supervisor
            self.add_job("probe engine", supervisor.run)
            return
        options = {"ttl": lease_ttl} if lease_ttl is not None else {}
        lease = ProbeLease(self.store, self.actor + "/" + self._session_id(), **options)  # type: ignore[arg-type]
        self.leased = shared_mod.LeasedProbes(supervisor, lease, self._lease_changed)
        self.probes = self.leased
        self.add_job("probe engine", self.leased.run)

    def _session_id(self) -> str:
        return self.heartbeat.session if self.heartbeat is not None else "0"

    def _lease_changed(self) -> None:
        self._tell(Change("shared"))
        self.update_freshness()

    async def recorder(self, event: BaseEvent) -> BaseEvent | None:
        """The `ControlService` recorder: operator events fsynced, machine events grouped."""
        if type(event).durable:
            return await self.record(event)
        stamped = await self.record_machine([event])
        return stamped[0] if stamped else None

    def control_options(self) -> dict[str, Any]:
        """`ControlService` keyword arguments tying it to this session's state and clock."""
        return {
            "state": lambda: self.state,
            "clock": self.clock,
            "actor": self.actor,
            "needs_second": self.needs_second,
            "may_apply": self.may_apply,
        }

    def use_controls(self, controls: ControlService) -> None:
        """Pull levers through `controls`; re-arm the automatic reverts pending in the log."""
        self.controls = controls
        if not self.read_only:
            controls.sync_auto_reverts(self.state)
        self._tell(Change("state"))

    async def run_controls(self, controls: ControlService) -> None:
        """`use_controls` until the session closes, then close timers and the HTTP client."""
        try:
            self.use_controls(controls)
            await asyncio.Event().wait()
        finally:
            await controls.aclose()

    def levers(self, service: str | None) -> LeverReadings | None:
        """What the mitigation panel shows of `service` (None: no control service)."""
        return readings(self.controls, service)

    def _probes_changed(self) -> None:
        self.update_freshness()

    def add_job(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job()` from `start()` until `aclose()`; its failure is a problem, not a crash."""
        self._jobs.append((name, job))
        if self._running:
            self._running.append(asyncio.get_running_loop().create_task(self._guard(name, job)))

    async def start(self) -> None:
        """Start the jobs (probe supervisor, feeds) in the running event loop."""
        loop = asyncio.get_running_loop()
        self._running = [loop.create_task(self._guard(name, job)) for name, job in self._jobs]

    async def _guard(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.report_problem(f"{name}: {exc}")

    async def aclose(self) -> None:
        """Stop the jobs, finish the queued writes and stop the writer thread."""
        if self.heartbeat is not None and not self.read_only and self._running:
            self.record_machine([self.heartbeat.leaving()])
        for task in self._running:
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._running = []
        await self.idle()
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        self._reading = None


@dataclass(frozen=True, slots=True)
class _Folded:
    """Events folded onto a state, and what the session keeps besides the state."""

    base: IncidentState
    base_team: Team
    events: list[BaseEvent]
    state: IncidentState
    team: Team
    #: When each target named in `events` last had a result.
    seen: dict[str, datetime]
    #: Targets whose state changed (a `probe_state_changed`).
    named: set[str]
    #: Whether a `probe_samples` was among `events`.
    sampled: bool


def _fold_events(state: IncidentState, team: Team, events: Iterable[BaseEvent]) -> _Folded:
    """Pure: `events` (those after `state.last_seq`) folded onto `state` and `team`."""
    base, base_team = state, team
    batch = list(events)
    seen: dict[str, datetime] = {}
    named: set[str] = set()
    sampled = False
    parse_ts = ev.parse_ts
    for event in batch:
        if event.seq and event.seq <= state.last_seq:
            continue
        state = reduce(state, event)
        team = reduce_team(team, event)
        if isinstance(event, ev.ProbeSamples):
            at = parse_ts(event.ts)
            seen.update({sample.target: at for sample in event.samples if sample.count})
            sampled = True
        elif isinstance(event, ev.ProbeStateChanged):
            seen[event.target] = parse_ts(event.ts)
            named.add(event.target)
    return _Folded(base, base_team, batch, state, team, seen, named, sampled)


def _machine(actor: str) -> str:
    return actor.rpartition("@")[2] if "@" in actor else socket.gethostname()


async def _nothing() -> list[BaseEvent]:
    return []
