"""The mitigation panel: the levers of the selected service, their true values, and who last
pulled them.

Values come from the service (read back after every change and re-read every few seconds)
when a `ControlService` is attached, else from the incident log (replay). Pulling a lever
opens the change dialog; the change itself runs in a worker through
`ControlService.request_change`, which logs the request and the result before the panel
shows them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from warroom import events as ev
from warroom.controls.client import ControlError
from warroom.controls.model import ControlConfig, ControlKind, ControlSpec, format_value
from warroom.controls.service import ChangeOutcome, ControlService
from warroom.durations import format_duration
from warroom.state import ControlView, IncidentState
from warroom.tui.actions import CONTROLS, LIVE, bindings_for
from warroom.tui.screens.control_dialog import REVERT, ChangeRequest, ControlDialog, ExtendDialog

#: Seconds between re-reads of the shown controls' values from their service.
REFRESH_INTERVAL = 5.0
DEFAULT_EXTEND_S = 600.0


def _line(text: str, style: str) -> Text:
    """An indented detail line, cut with an ellipsis rather than wrapped."""
    return Text("  " + text, style=style, no_wrap=True, overflow="ellipsis")


def _clock_text(ts: str) -> str:
    return ev.parse_ts(ts).strftime("%H:%M:%S") if ts else ""


def _spec_from_view(view: ControlView) -> ControlSpec:
    """A display-only spec for a control known only from the log (replay): kind and unit are
    not logged, so values are shown as they were read back."""
    kind = ControlKind.TOGGLE if isinstance(view.value, bool) else ControlKind.CHOICE
    return ControlSpec(service=view.service, control=view.control, kind=kind)


class ControlPanel(Widget):
    """Shows the controls of the selected service and pulls them through the change dialog."""

    BINDINGS = bindings_for(CONTROLS, LIVE)

    DEFAULT_CSS = """
    ControlPanel { height: auto; }
    ControlPanel > #control-panel-message { color: $text-muted; height: auto; }
    ControlPanel > OptionList, ControlPanel > OptionList:focus {
        height: auto;
        max-height: 100%;
        border: none;
        padding: 0;
        background: transparent;
    }
    """

    class ChangeFinished(Message):
        """A change made from the panel ended (applied or failed); it is in the log already."""

        def __init__(self, panel: ControlPanel, outcome: ChangeOutcome) -> None:
            super().__init__()
            self.panel = panel
            self.outcome = outcome

        @property
        def control(self) -> ControlPanel:
            return self.panel

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.service: str | None = None
        self.state = IncidentState()
        self.controls: ControlService | None = None
        self.refresh_interval: float | None = REFRESH_INTERVAL
        self._keys: list[str] = []
        self._drawn: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._message(), id="control-panel-message")
        yield OptionList(id="control-list")

    def on_mount(self) -> None:
        self._redraw()

    # -- what the console calls ---------------------------------------------------------------

    def attach(self, controls: ControlService) -> None:
        """Use `controls` for values and changes (live mode); starts the periodic re-read."""
        self.controls = controls
        if self.refresh_interval:
            self.set_interval(self.refresh_interval, self._refresh_values)
            self._refresh_values()
        self._redraw()

    def show_service(self, service: str | None, state: IncidentState) -> None:
        """Show `service`'s controls as of `state` (called on every relevant state change)."""
        changed = service != self.service
        self.service = service
        self.state = state
        self._redraw()
        if changed and self.controls is not None and self.refresh_interval:
            self._refresh_values()

    @property
    def shown_keys(self) -> list[str]:
        """The `service/control` keys listed, in order."""
        return list(self._keys)

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#control-list", OptionList)

    # -- rendering -------------------------------------------------------------------------------

    def _message(self) -> str:
        if self.service is None:
            return "Select a service in the probe table to see its levers."
        if self.controls is None and not self._specs():
            return f"No controls for {self.service} (none configured, none in the log)."
        if not self._specs():
            return f"No controls for {self.service}."
        return ""

    def _specs(self) -> list[ControlSpec]:
        if self.service is None:
            return []
        if self.controls is not None:
            return self.controls.specs(self.service)
        return [
            _spec_from_view(view)
            for view in self.state.controls.values()
            if view.service == self.service
        ]

    def _value(self, spec: ControlSpec) -> Any:
        if self.controls is not None:
            live = self.controls.values.get(spec.key)
            if live is not None:
                return live
        view = self.state.controls.get(spec.key)
        return view.value if view is not None else None

    def _row(self, spec: ControlSpec) -> Group:
        """Title and value on one line (the value always whole), then when/who, then why not."""
        view = self.state.controls.get(spec.key)
        title = Text(("⚠ " if spec.dangerous else "") + spec.title)
        title.stylize("bold red" if spec.dangerous else "bold")
        head = Table.grid(expand=True, padding=(0, 1))
        head.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        head.add_column(justify="right", no_wrap=True)
        head.add_row(title, Text(format_value(spec, self._value(spec)), style="bold cyan"))
        detail = ""
        if view is not None and view.last_changed_at:
            detail = f"{_clock_text(view.last_changed_at)} {view.last_changed_by}"
        if view is not None and view.auto_revert_at:
            detail += f"{' · ' if detail else ''}↺ {_clock_text(view.auto_revert_at)}"
        # Unchanged levers take one line, so a narrow pane shows more of them.
        lines: list[Any] = [head, _line(detail, "dim")] if detail else [head]
        if view is not None and view.pending:
            change = self.state.changes.get(view.pending)
            target = format_value(spec, change.to_value) if change is not None else "?"
            lines.append(_line(f"⋯ applying → {target}", "yellow"))
        elif view is not None and view.error:
            lines.append(_line(f"✗ {view.error}", "red"))
        elif self.controls is not None and spec.key in self.controls.read_errors:
            lines.append(_line(f"? cannot read: {self.controls.read_errors[spec.key]}", "red"))
        return Group(*lines)

    def _signature(self, specs: list[ControlSpec]) -> tuple[Any, ...]:
        """Everything a redraw depends on: unchanged means nothing to repaint."""
        errors = self.controls.read_errors if self.controls is not None else {}
        return (
            self.service,
            self.controls is not None,
            tuple(
                (spec, self._value(spec), self.state.controls.get(spec.key), errors.get(spec.key))
                for spec in specs
            ),
        )

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        specs = self._specs()
        signature = self._signature(specs)
        if signature == self._drawn:
            return
        self._drawn = signature
        message = self._message()
        note = self.query_one("#control-panel-message", Static)
        note.update(message)
        note.display = bool(message)
        options = self.option_list
        keys = [spec.key for spec in specs]
        rows = [self._row(spec) for spec in specs]
        highlighted = options.highlighted
        if keys == self._keys:
            for index, row in enumerate(rows):
                options.replace_option_prompt_at_index(index, row)
        else:
            options.set_options(Option(row, id=key) for row, key in zip(rows, keys, strict=True))
            self._keys = keys
            highlighted = 0 if keys else None
        if highlighted is not None and keys:
            options.highlighted = min(highlighted, len(keys) - 1)
        options.display = bool(keys)
        if keys:
            # A row grows when an error line appears: keep all of the highlighted one in view.
            self.call_after_refresh(options.scroll_to_highlight)

    @work(group="control-refresh", exclusive=True, exit_on_error=False)
    async def _refresh_values(self) -> None:
        controls, service = self.controls, self.service
        if controls is None or service is None:
            return
        await controls.refresh(service)
        self._redraw()

    # -- pulling levers ----------------------------------------------------------------------

    def _selected(self) -> tuple[str, str] | None:
        option = self.option_list.highlighted_option
        if option is None or option.id is None:
            return None
        service, _, control = option.id.partition("/")
        return service, control

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (getattr(self.app, "read_only", False) and action.endswith("_control"))

    def _need_controls(self) -> ControlService | None:
        if self.controls is None:
            self.notify("no control path: this console has no controls attached", severity="error")
        return self.controls

    def action_change_control(self) -> None:
        selected = self._selected()
        if selected is not None:
            self.open_control_dialog(*selected)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if not getattr(self.app, "read_only", False):
            self.action_change_control()

    def open_control_dialog(
        self,
        service: str,
        control: str,
        preset_value: Any = None,
        runbook: str | None = None,
        step: str | None = None,
        reason: str = "",
    ) -> None:
        """Ask for a change of one lever (value, reason, duration, confirmation), then make it."""
        controls = self._need_controls()
        if controls is None:
            return
        try:
            spec = controls.spec(service, control)
        except ControlError as exc:
            self.notify(str(exc), severity="error")
            return
        note = f"From runbook {runbook}, step {step}." if runbook else ""

        def done(request: ChangeRequest | None) -> None:
            if request is not None:
                self._change(spec, request, runbook, step)

        self.app.push_screen(
            ControlDialog(
                spec,
                controls.value(service, control),
                preset=preset_value,
                note=note,
                reason=reason,
            ),
            done,
        )

    def request_change(
        self,
        service: str,
        control: str,
        value: Any = None,
        reason: str = "",
        runbook: str | None = None,
        step: str | None = None,
    ) -> None:
        """The runbook path: the same dialog, preset with the step's value and reason."""
        self.open_control_dialog(
            service, control, preset_value=value, runbook=runbook, step=step, reason=reason
        )

    def action_revert_control(self) -> None:
        selected = self._selected()
        controls = self._need_controls()
        if selected is None or controls is None:
            return
        service, control = selected
        spec = controls.spec(service, control)
        change = controls.revert_target(service, control)
        if change is None or change.from_value is None:
            self.notify(f"{spec.key}: no applied change to revert", severity="warning")
            return

        def done(request: ChangeRequest | None) -> None:
            if request is not None:
                self._revert(spec, request)

        self.app.push_screen(
            ControlDialog(spec, controls.value(service, control), mode=REVERT, revert_of=change),
            done,
        )

    def action_extend_control(self) -> None:
        selected = self._selected()
        controls = self._need_controls()
        if selected is None or controls is None:
            return
        service, control = selected
        spec = controls.spec(service, control)
        view = self.state.control(service, control)
        if view is None or not view.auto_revert_at:
            self.notify(f"{spec.key}: no automatic revert is pending", severity="warning")
            return
        change = self.state.changes.get(view.auto_revert_of)
        default = (change.auto_revert_s if change else None) or DEFAULT_EXTEND_S

        def done(result: tuple[float, str] | None) -> None:
            if result is not None:
                self._extend(spec, *result)

        self.app.push_screen(ExtendDialog(spec, _clock_text(view.auto_revert_at), default), done)

    # -- workers: the calls themselves ------------------------------------------------------

    def _actor(self) -> str | None:
        return getattr(self.app, "actor", None)

    @work(group="control-change", exit_on_error=False)
    async def _change(
        self, spec: ControlSpec, request: ChangeRequest, runbook: str | None, step: str | None
    ) -> None:
        assert self.controls is not None
        try:
            outcome = await self.controls.request_change(
                spec.service,
                spec.control,
                request.value,
                request.reason,
                self._actor(),
                auto_revert_s=request.auto_revert_s,
                runbook=runbook,
                step=step,
                confirm=request.confirm,
            )
        except ControlError as exc:
            self.notify(str(exc), title="Not changed", severity="error")
            return
        except Exception as exc:  # logged as failed by the service; the console carries on
            self.notify(f"{spec.key}: {exc}", title="Not changed", severity="error")
            return
        self._finished(spec, outcome)

    @work(group="control-change", exit_on_error=False)
    async def _revert(self, spec: ControlSpec, request: ChangeRequest) -> None:
        assert self.controls is not None
        try:
            outcome = await self.controls.revert(
                spec.service, spec.control, request.reason, self._actor(), confirm=request.confirm
            )
        except ControlError as exc:
            self.notify(str(exc), title="Not reverted", severity="error")
            return
        except Exception as exc:  # logged as failed by the service; the console carries on
            self.notify(f"{spec.key}: {exc}", title="Not reverted", severity="error")
            return
        self._finished(spec, outcome)

    @work(group="control-change", exit_on_error=False)
    async def _extend(self, spec: ControlSpec, seconds: float, reason: str) -> None:
        assert self.controls is not None
        try:
            until = await self.controls.extend(
                spec.service, spec.control, seconds, reason, self._actor()
            )
        except ControlError as exc:
            self.notify(str(exc), title="Not extended", severity="error")
            return
        self.notify(
            f"{spec.key}: kept {format_duration(seconds)} longer, reverts at "
            f"{until.strftime('%H:%M:%S')}",
            timeout=5,
        )
        self._redraw()

    def _finished(self, spec: ControlSpec, outcome: ChangeOutcome) -> None:
        value = format_value(spec, outcome.value)
        if outcome.ok:
            self.notify(f"{spec.key} = {value} (read back)", title="Applied", timeout=5)
        else:
            self.notify(
                f"{spec.key}: {outcome.error} — now {value}",
                title="Change failed",
                severity="error",
                timeout=10,
            )
        self._redraw()
        self.post_message(self.ChangeFinished(self, outcome))


# -- wiring a control service into the console -------------------------------------------------

#: What `WarroomApp(background=[...])` runs on mount (see warroom/tui/app.py).
BackgroundTask = Callable[[Any], Awaitable[None]]


def app_recorder(app: Any) -> Callable[[ev.BaseEvent], Awaitable[ev.BaseEvent | None]]:
    """Record through the console's session so the state and screen follow: operator events
    fsynced, machine events (effect readings) group-written."""

    async def record(event: ev.BaseEvent) -> ev.BaseEvent | None:
        if type(event).durable:
            return await app.session.record(event)
        stamped = await app.session.record_machine([event])
        return stamped[0] if stamped else None

    return record


def service_options(app: Any) -> dict[str, Any]:
    """ControlService keyword arguments that tie it to the console's log, state and clock."""
    return {"state": lambda: app.state, "clock": app.clock, "actor": app.actor}


async def run_attached(app: Any, controls: ControlService) -> None:
    """Attach `controls` to the console's panel, re-arm pending auto-reverts, and keep them
    until the console stops (then close timers and the HTTP client)."""
    try:
        panel = app.main_screen.query_one(ControlPanel)
        panel.attach(controls)
        if not getattr(app, "read_only", False):
            controls.resume()
        await asyncio.Event().wait()
    finally:
        await controls.aclose()


def sim_controls(admin_url: str, token_path: str | Path, **kwargs: Any) -> BackgroundTask:
    """A background task giving the console the simulated fleet's levers (`GET /controls`)."""

    async def controls_from_sim(app: Any) -> None:
        controls = await ControlService.for_sim(
            admin_url, token_path, app_recorder(app), **service_options(app), **kwargs
        )
        await run_attached(app, controls)

    return controls_from_sim


def config_controls(
    configs: Sequence[ControlConfig], env: Mapping[str, str] | None = None, **kwargs: Any
) -> BackgroundTask:
    """A background task giving the console the `[[controls]]` of warroom.toml."""

    async def controls_from_config(app: Any) -> None:
        controls = ControlService.from_config(
            configs, app_recorder(app), env=env, **service_options(app), **kwargs
        )
        await run_attached(app, controls)

    return controls_from_config
