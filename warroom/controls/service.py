"""The change flow every lever goes through: check -> log the request -> apply -> read back ->
log the result, plus revert, automatic revert with extension, and effect capture.

The panel, the change dialog and runbook actions all call `ControlService.request_change`, so
they share one confirmation rule and one logging path. The request is on disk before the call
is made, and the result is always logged, with the value read back from the service (the
truth, not what was asked for), whether the call worked, failed, timed out or was cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from warroom import events as ev
from warroom.controls.client import (
    Applier,
    CallContext,
    ControlCallError,
    ControlError,
    SilenceApplier,
    appliers_from_config,
    load_sim_controls,
)
from warroom.controls.model import (
    NO_LIMIT,
    ControlConfig,
    ControlKind,
    ControlSpec,
    coerce_value,
    format_value,
    parse_value,
    value_unit,
)
from warroom.durations import format_duration
from warroom.events import BaseEvent, ControlValue, ProbeSample, ProbeState, utc_now
from warroom.identity import default_actor
from warroom.state import ControlChange, IncidentState, control_key, reduce

#: Writes one event to the incident log and returns it stamped (seq, ts, hash), or None if it
#: could not be written; may be a coroutine function (the console's session writes off-loop).
Recorder = Callable[[BaseEvent], "BaseEvent | Awaitable[BaseEvent | None] | None"]
#: The probe readings of one service now (for the before/after effect record).
Readings = Callable[[str], list[ProbeSample]]

AUTO_REVERT_ACTOR = "warroom (auto-revert)"
#: Longest wait for the value before a change (the "from" of the request): a hanging service
#: must not keep the request off the log for long; the last known value is used instead.
PRE_READ_TIMEOUT_S = 2.0
#: Reads run at once when refreshing many controls (one admin server usually answers all).
REFRESH_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """How a change ended; `value` is what the service reports now (None if unreadable)."""

    request_id: str
    service: str
    control: str
    ok: bool
    value: ControlValue | None
    error: str = ""


def probe_readings(state: IncidentState, service: str) -> list[ProbeSample]:
    """The latest reading of every probe target of `service`, from the incident state."""
    return [
        ProbeSample(
            target=view.target,
            state=ProbeState(view.state),
            ok=view.ok,
            count=view.count,
            latency_ms=view.latency_ms,
        )
        for view in sorted(state.probes.values(), key=lambda v: v.target)
        if view.service == service or (not view.service and view.target == service)
    ]


#: Seconds a two-person change waits for its confirmation before it is logged as failed.
SECOND_TIMEOUT_S = 900.0
SECOND_POLL_S = 0.1


def new_request_id() -> str:
    return "chg-" + secrets.token_hex(5)


def _same(spec: ControlSpec, a: ControlValue | None, b: ControlValue | None) -> bool:
    if a is None or b is None:
        return a is b
    if ControlKind(spec.kind) in (ControlKind.LEVEL, ControlKind.RATE) and NO_LIMIT not in (a, b):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
        except (TypeError, ValueError):
            return False
    return type(a) is type(b) and a == b


@dataclass(slots=True)
class _AutoRevert:
    request_id: str
    until: datetime
    task: asyncio.Task[None]


class ControlService:
    """Applies changes to the configured controls and logs every step of each one."""

    def __init__(
        self,
        appliers: Iterable[Applier],
        record: Recorder,
        *,
        actor: str | None = None,
        state: Callable[[], IncidentState] | None = None,
        readings: Readings | None = None,
        values: Mapping[str, ControlValue | None] | None = None,
        effect_after: float | None = None,
        clock: Callable[[], datetime] = utc_now,
        client: httpx.AsyncClient | None = None,
        pre_read_timeout: float = PRE_READ_TIMEOUT_S,
        needs_second: Callable[[ControlSpec], bool] | None = None,
        may_apply: Callable[[str], bool] | None = None,
        second_timeout: float = SECOND_TIMEOUT_S,
    ) -> None:
        """`record` appends to the incident log; `state` gives the console's current state
        (by default the service folds the events it records itself); `readings` gives a
        service's probe readings (by default from `state`); `effect_after` overrides every
        control's delay before the "after" readings; `client` is closed by `aclose`."""
        self._appliers: dict[str, Applier] = {}
        for applier in appliers:
            if applier.spec.key in self._appliers:
                raise ControlError(f"control {applier.spec.key} is declared twice")
            self._appliers[applier.spec.key] = applier
        self._record_fn = record
        self.actor = actor or default_actor()
        self._state_fn = state
        self._own_state = IncidentState()
        self._readings_fn = readings
        self._effect_after = effect_after
        self._clock = clock
        self._client = client
        self.pre_read_timeout = pre_read_timeout
        #: Two-person rule: which changes wait, and whether a waiting one may go ahead now.
        self._needs_second = needs_second or (lambda spec: spec.needs_second)
        self._may_apply = may_apply
        self.second_timeout = second_timeout
        self.values: dict[str, ControlValue | None] = dict(values or {})
        self.read_errors: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._auto: dict[str, _AutoRevert] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    async def for_sim(
        cls,
        admin_url: str,
        token_path: str | Path,
        record: Recorder,
        **kwargs: Any,
    ) -> ControlService:
        """The controls of a simulated fleet (`GET /controls`), changed via its admin API."""
        client = kwargs.pop("client", None) or _new_client()
        try:
            listed = await load_sim_controls(admin_url, token_path, client)
        except BaseException:
            await client.aclose()
            raise
        return cls(listed.appliers, record, values=listed.values, client=client, **kwargs)

    @classmethod
    def from_config(
        cls,
        configs: Iterable[ControlConfig],
        record: Recorder,
        *,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> ControlService:
        """The `[[controls]]` of warroom.toml; header `${VAR}`s come from `env` (os.environ)."""
        client = kwargs.pop("client", None) or _new_client()
        return cls(appliers_from_config(configs, client, env), record, client=client, **kwargs)

    # -- what there is --------------------------------------------------------------------

    def specs(self, service: str | None = None) -> list[ControlSpec]:
        """Controls in declaration order, optionally of one service."""
        return [
            a.spec for a in self._appliers.values() if service is None or a.spec.service == service
        ]

    def services(self) -> list[str]:
        return list(dict.fromkeys(a.spec.service for a in self._appliers.values()))

    def applier(self, service: str, control: str) -> Applier:
        applier = self._appliers.get(control_key(service, control))
        if applier is None:
            raise ControlError(f"no control {service}/{control}")
        return applier

    def spec(self, service: str, control: str) -> ControlSpec:
        return self.applier(service, control).spec

    def state(self) -> IncidentState:
        return self._state_fn() if self._state_fn is not None else self._own_state

    def value(self, service: str, control: str) -> ControlValue | None:
        """The value last read from the service, else the last one in the log."""
        key = control_key(service, control)
        if self.values.get(key) is not None:
            return self.values[key]
        view = self.state().control(service, control)
        return view.value if view is not None else None

    def revert_target(self, service: str, control: str) -> ControlChange | None:
        """The change `revert` would undo: the last applied change of the control."""
        return self.state().last_applied_change(service, control)

    def auto_revert_due(self, service: str, control: str) -> datetime | None:
        pending = self._auto.get(control_key(service, control))
        return pending.until if pending is not None else None

    # -- checks (before anything is logged) -------------------------------------------------

    def check_value(self, service: str, control: str, value: Any) -> ControlValue:
        """The typed value for `value`, or ControlError saying why it is not allowed."""
        spec = self.spec(service, control)
        try:
            return coerce_value(spec, value)
        except ValueError as exc:
            raise ControlError(f"{spec.key}: {exc}") from None

    @staticmethod
    def _check_reason(spec: ControlSpec, reason: str) -> str:
        text = " ".join((reason or "").split())
        if not text:
            raise ControlError(f"{spec.key}: give a reason for the change")
        return text

    @staticmethod
    def _check_confirm(spec: ControlSpec, confirm: str | None) -> None:
        if spec.dangerous and (confirm or "").strip() != spec.service:
            raise ControlError(
                f"{spec.key} is dangerous: type the service name ({spec.service}) to confirm"
            )

    # -- changes --------------------------------------------------------------------------

    async def request_change(
        self,
        service: str,
        control: str,
        value: Any,
        reason: str,
        actor: str | None = None,
        auto_revert_s: float | None = None,
        runbook: str | None = None,
        step: str | None = None,
        *,
        confirm: str | None = None,
    ) -> ChangeOutcome:
        """Change a control and log it; dangerous controls need `confirm` == the service name.

        Raises ControlError (nothing logged) if the change may not be asked for; otherwise the
        request and its result are logged and the outcome says whether it took effect.
        """
        applier = self.applier(service, control)
        spec = applier.spec
        target = self.check_value(service, control, value)
        text = self._check_reason(spec, reason)
        self._check_confirm(spec, confirm)
        if auto_revert_s is not None and not (math.isfinite(auto_revert_s) and auto_revert_s > 0):
            raise ControlError(f"{spec.key}: auto-revert must be a positive duration")
        return await self._change(
            applier,
            target,
            text,
            actor or self.actor,
            auto_revert_s=auto_revert_s,
            runbook=runbook,
            step=step,
        )

    async def revert(
        self,
        service: str,
        control: str,
        reason: str,
        actor: str | None = None,
        *,
        confirm: str | None = None,
    ) -> ChangeOutcome:
        """Undo the last applied change of a control (logged as its own change, `revert_of`)."""
        applier = self.applier(service, control)
        spec = applier.spec
        text = self._check_reason(spec, reason)
        self._check_confirm(spec, confirm)
        change = self._revert_source(spec)
        return await self._change(
            applier,
            parse_value(spec, change.from_value),
            text,
            actor or self.actor,
            revert_of=change.request_id,
        )

    def _revert_source(self, spec: ControlSpec) -> ControlChange:
        change = self.revert_target(spec.service, spec.control)
        if change is None:
            raise ControlError(f"{spec.key}: no applied change to revert")
        if change.from_value is None:
            raise ControlError(f"{spec.key}: the value before {change.request_id} is not known")
        return change

    async def extend(
        self,
        service: str,
        control: str,
        extend_s: float,
        reason: str = "",
        actor: str | None = None,
    ) -> datetime:
        """Push back the pending automatic revert of a control by `extend_s`; returns when."""
        spec = self.spec(service, control)
        if not (math.isfinite(extend_s) and extend_s > 0):
            raise ControlError(f"{spec.key}: extend by a positive duration")
        view = self.state().control(service, control)
        if view is None or not view.auto_revert_of or not view.auto_revert_at:
            raise ControlError(f"{spec.key}: no automatic revert is pending")
        until = max(ev.parse_ts(view.auto_revert_at), self._clock()) + timedelta(seconds=extend_s)
        await self._record(
            ev.ControlAutoRevertExtended(
                actor=actor or self.actor,
                request_id=view.auto_revert_of,
                service=service,
                control=control,
                until=ev.format_ts(until),
                extend_s=extend_s,
                reason=" ".join(reason.split()),
            )
        )
        applier = self.applier(service, control)
        if isinstance(applier, SilenceApplier):
            # The silence itself ends when the revert is due, not at its first endsAt.
            try:
                await applier.extend(until, reason, actor or self.actor)
            except ControlCallError as exc:
                raise ControlError(f"{spec.key}: revert moved, but {exc.message}") from None
        return until

    def add_config(self, config: ControlConfig) -> ControlSpec:
        """Attach a lever made during the incident (a silence for one alert); idempotent."""
        if self._client is None:
            self._client = _new_client()
        for applier in appliers_from_config([config], self._client):
            self._appliers.setdefault(applier.spec.key, applier)
        return self.spec(config.service, config.control)

    async def _change(
        self,
        applier: Applier,
        target: ControlValue,
        reason: str,
        actor: str,
        *,
        auto_revert_s: float | None = None,
        runbook: str | None = None,
        step: str | None = None,
        revert_of: str | None = None,
    ) -> ChangeOutcome:
        spec = applier.spec
        key = spec.key
        async with self._locks.setdefault(key, asyncio.Lock()):
            before = self._readings(spec.service)
            from_value = await self._read_quiet(applier, self.pre_read_timeout)
            if from_value is None:
                from_value = self.value(spec.service, spec.control)
            request_id = new_request_id()
            second = self._needs_second(spec) and revert_of is None
            await self._record(
                ev.ControlRequested(
                    actor=actor,
                    request_id=request_id,
                    service=spec.service,
                    control=spec.control,
                    from_value=from_value,
                    to_value=target,
                    reason=reason,
                    revert_of=revert_of,
                    auto_revert_s=auto_revert_s,
                    runbook=runbook,
                    step=step,
                    unit=value_unit(spec),
                    needs_second=second,
                )
            )
            if second and not await self._second_confirmed(request_id):
                waited = f"no second responder confirmed within {self.second_timeout:g}s"
                await self._record(self._failed(spec, request_id, actor, waited))
                return ChangeOutcome(
                    request_id=request_id,
                    service=spec.service,
                    control=spec.control,
                    ok=False,
                    value=None,
                    error=waited,
                )
            # A silence made with an automatic revert ends when the revert is due.
            ends_at = self._clock() + timedelta(seconds=auto_revert_s) if auto_revert_s else None
            context = CallContext(target, reason, actor, request_id, ends_at=ends_at)
            try:
                result = await self._apply_and_read(applier, context)
            except asyncio.CancelledError:
                await self._record(
                    self._failed(spec, request_id, actor, "cancelled before the result")
                )
                raise
            except Exception as exc:
                await self._record(
                    self._failed(spec, request_id, actor, f"internal error: {exc!r}")
                )
                raise
            await self._record(result)
            self._start(
                self._capture_effect(spec, request_id, before, applier.effect_after),
            )
            ok = isinstance(result, ev.ControlApplied)
            return ChangeOutcome(
                request_id=request_id,
                service=spec.service,
                control=spec.control,
                ok=ok,
                value=result.value,
                error="" if ok else getattr(result, "error", ""),
            )

    async def _second_confirmed(self, request_id: str) -> bool:
        """Hold a `needs_second` change until the team's view lets it go (or time runs out)."""
        if self._may_apply is None:
            return False
        deadline = asyncio.get_running_loop().time() + self.second_timeout
        while not self._may_apply(request_id):
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(SECOND_POLL_S)
        return True

    async def _apply_and_read(
        self, applier: Applier, context: CallContext
    ) -> ev.ControlApplied | ev.ControlFailed:
        spec = applier.spec
        rid, actor = context.request_id, context.actor
        try:
            response = await applier.apply(context)
        except ControlCallError as exc:
            true = await self._read_quiet(applier)
            return self._failed(spec, rid, actor, exc.message, true)
        try:
            true = await applier.read()
        except ControlCallError as exc:
            self.read_errors[spec.key] = exc.message
            return self._failed(spec, rid, actor, f"sent, but {exc.message}")
        self._observe(spec, true)
        if not _same(spec, true, context.value):
            error = (
                f"asked for {format_value(spec, context.value)} but {spec.service} "
                f"reports {format_value(spec, true)}"
            )
            return self._failed(spec, rid, actor, error, true)
        return ev.ControlApplied(
            actor=actor,
            request_id=rid,
            service=spec.service,
            control=spec.control,
            value=true,
            response=response,
            unit=value_unit(spec),
        )

    @staticmethod
    def _failed(
        spec: ControlSpec,
        request_id: str,
        actor: str,
        error: str,
        value: ControlValue | None = None,
    ) -> ev.ControlFailed:
        return ev.ControlFailed(
            actor=actor,
            request_id=request_id,
            service=spec.service,
            control=spec.control,
            error=error,
            value=value,
            unit=value_unit(spec),
        )

    # -- reading ----------------------------------------------------------------------------

    async def read(self, service: str, control: str) -> ControlValue:
        """Read one control's value from its service now (ControlCallError if it cannot)."""
        applier = self.applier(service, control)
        value = await applier.read()
        self._observe(applier.spec, value)
        return value

    async def refresh(self, service: str | None = None) -> dict[str, ControlValue | None]:
        """Re-read the values of all controls (of one service); failures go to `read_errors`."""
        gate = asyncio.Semaphore(REFRESH_CONCURRENCY)

        async def one(applier: Applier) -> None:
            async with gate:
                await self._read_quiet(applier)

        chosen = [a for a in self._appliers.values() if service in (None, a.spec.service)]
        await asyncio.gather(*(one(a) for a in chosen))
        return {a.spec.key: self.values.get(a.spec.key) for a in chosen}

    async def _read_quiet(
        self, applier: Applier, limit: float | None = None
    ) -> ControlValue | None:
        try:
            async with asyncio.timeout(limit):
                value = await applier.read()
        except ControlCallError as exc:
            self.read_errors[applier.spec.key] = exc.message
            return None
        except TimeoutError:
            self.read_errors[applier.spec.key] = f"read timed out after {limit:g}s"
            return None
        self._observe(applier.spec, value)
        return value

    def _observe(self, spec: ControlSpec, value: ControlValue) -> None:
        self.values[spec.key] = value
        self.read_errors.pop(spec.key, None)

    # -- effect capture and automatic revert -------------------------------------------------

    def _readings(self, service: str) -> list[ProbeSample]:
        if self._readings_fn is not None:
            return list(self._readings_fn(service))
        return probe_readings(self.state(), service)

    async def _capture_effect(
        self, spec: ControlSpec, request_id: str, before: list[ProbeSample], delay: float
    ) -> None:
        after_s = self._effect_after if self._effect_after is not None else delay
        await asyncio.sleep(after_s)
        await self._record(
            ev.ControlEffect(
                actor=self.actor,
                request_id=request_id,
                service=spec.service,
                control=spec.control,
                before=before,
                after=self._readings(spec.service),
                after_s=after_s,
            )
        )

    def _schedule_auto_revert(self, spec: ControlSpec, request_id: str, until: datetime) -> None:
        self._cancel_auto_revert(spec.key)
        task = self._start(self._auto_revert_at(spec, request_id, until))
        self._auto[spec.key] = _AutoRevert(request_id, until, task)

    def _cancel_auto_revert(self, key: str) -> None:
        pending = self._auto.pop(key, None)
        if pending is not None and pending.task is not asyncio.current_task():
            pending.task.cancel()

    async def _auto_revert_at(self, spec: ControlSpec, request_id: str, until: datetime) -> None:
        delay = (until - self._clock()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        pending = self._auto.get(spec.key)
        if pending is None or pending.request_id != request_id:
            return
        # The entry stays until the revert's result is folded: `sync_auto_reverts` then sees
        # the schedule gone from the state and drops it, instead of arming it again.
        change = self.revert_target(spec.service, spec.control)
        if change is None or change.request_id != request_id or change.from_value is None:
            self._auto.pop(spec.key, None)
            return  # superseded by a later change: reverting would undo that one too
        requested_by = change.actor or "?"
        took = format_duration(change.auto_revert_s or 0)
        await self._change(
            self._appliers[spec.key],
            parse_value(spec, change.from_value),
            f"automatic revert after {took} (change by {requested_by}: {change.reason})",
            AUTO_REVERT_ACTOR,
            revert_of=request_id,
        )

    def sync_auto_reverts(self, state: IncidentState | None = None) -> int:
        """Arm, move or cancel the automatic-revert timers so they match the reducer's view
        of each control (the one place the rule lives); returns how many are armed."""
        current = state if state is not None else self.state()
        for key, applier in self._appliers.items():
            view = current.controls.get(key)
            if view is None or not view.auto_revert_of or not view.auto_revert_at:
                if key in self._auto:
                    self._cancel_auto_revert(key)
                continue
            until = ev.parse_ts(view.auto_revert_at)
            pending = self._auto.get(key)
            if pending is None or (pending.request_id, pending.until) != (
                view.auto_revert_of,
                until,
            ):
                self._schedule_auto_revert(applier.spec, view.auto_revert_of, until)
        return len(self._auto)

    def resume(self, state: IncidentState | None = None) -> int:
        """Re-arm the automatic reverts still pending in a resumed log; returns how many."""
        return self.sync_auto_reverts(state)

    # -- plumbing ------------------------------------------------------------------------------

    async def _record(self, event: BaseEvent) -> BaseEvent:
        result = self._record_fn(event)
        stamped = await result if inspect.isawaitable(result) else result
        if stamped is None:
            # The recorder could not write (it has told the user why). A change must not be
            # made unless its request is on disk; a lost result is shown by its recorder.
            if isinstance(event, ev.ControlRequested):
                raise ControlError(
                    f"{event.service}/{event.control}: not changed, the request could not be "
                    "written to the incident log"
                )
            return event
        if self._state_fn is None:
            self._own_state = reduce(self._own_state, stamped)
        self.sync_auto_reverts()
        return stamped

    def _start(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_for_effects(self) -> None:
        """Wait until every pending effect capture is logged (tests, and a clean shutdown)."""
        pending = [t for t in self._tasks if t not in {a.task for a in self._auto.values()}]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop timers and effect captures; close the HTTP client if this service made it."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._auto.clear()
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> ControlService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _new_client() -> httpx.AsyncClient:
    # Proxies from the environment are ignored: a lever must not depend on a proxy that the
    # incident may have taken down, and the sim's admin API is on loopback.
    return httpx.AsyncClient(trust_env=False, follow_redirects=False)
