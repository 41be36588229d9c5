"""Command palette providers: every action in the registry (for the current screen), and
every place to go: any runbook, target, service or lever, found by title or by service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from warroom.tui.actions import APP, ActionSpec, actions_for
from warroom.tui.messages import ChangeRequested, request_dialog


class ActionCommands(Provider):
    """Offers the registry's actions that exist on the active screen in the app's mode."""

    def _specs(self) -> list[ActionSpec]:
        mode = getattr(self.app, "mode", "live")
        scope = getattr(self.screen, "ACTION_SCOPE", None) or (
            "main" if self.screen.id == "main" else None
        )
        return [
            spec
            for spec in actions_for(None, mode)
            if spec.palette and (spec.scope == APP or spec.scope == scope)
        ]

    async def _run(self, spec: ActionSpec) -> None:
        target = self.app if spec.scope == APP else self.screen
        await target.run_action(spec.name)

    async def discover(self) -> Hits:
        for spec in self._specs():
            yield DiscoveryHit(
                Text.assemble(spec.description, (f"  {spec.display_keys()}", "dim")),
                partial(self._run, spec),
                text=spec.description,
                help=spec.name.replace("_", " "),
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec in self._specs():
            haystack = f"{spec.description} {spec.name.replace('_', ' ')}"
            score = matcher.match(haystack)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(spec.description),
                    partial(self._run, spec),
                    text=spec.description,
                    help=f"key: {spec.display_keys()}",
                )


@dataclass(frozen=True, slots=True)
class Destination:
    """One place the palette can go: what is shown, what it matches, what it does."""

    title: str
    #: Extra words matched but not shown as the title (services, ids, kinds).
    words: str
    help: str
    go: Callable[[], Awaitable[None] | None]


class GoAnywhere(Provider):
    """Every runbook loaded, every target and service, every lever: by title or by service."""

    def destinations(self) -> list[Destination]:
        app: Any = self.app
        found: list[Destination] = []
        for runbook_id, runbook in sorted(getattr(app, "runbooks", {}).items()):
            services = ", ".join(runbook.services)
            found.append(
                Destination(
                    f"Open runbook: {runbook.title}",
                    f"{runbook_id} {services}",
                    f"{runbook_id} · {services}" if services else runbook_id,
                    partial(app.open_runbook, runbook_id),
                )
            )
        state = getattr(app, "state", None)
        probes = state.probes if state is not None else {}
        for service in sorted({p.service for p in probes.values() if p.service}):
            found.append(
                Destination(
                    f"Go to service: {service}",
                    "service jump",
                    "puts the probe cursor on its first target",
                    partial(go_to_target, app, service=service),
                )
            )
        for target, probe in sorted(probes.items()):
            found.append(
                Destination(
                    f"Go to target: {target}",
                    f"{probe.service} target jump",
                    f"{probe.service} · {probe.state}",
                    partial(go_to_target, app, target=target),
                )
            )
        controls = getattr(getattr(app, "session", None), "controls", None)
        if controls is not None and not getattr(app, "read_only", False):
            for spec in controls.specs():
                found.append(
                    Destination(
                        f"Pull lever: {spec.service} · {spec.title}",
                        f"{spec.key} change",
                        "asks the value, a reason and a confirmation first",
                        partial(pull_lever, app, spec.service, spec.control),
                    )
                )
        return found

    async def discover(self) -> Hits:
        for place in self.destinations():
            yield DiscoveryHit(place.title, place.go, text=place.title, help=place.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for place in self.destinations():
            score = max(matcher.match(place.title), matcher.match(f"{place.title} {place.words}"))
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(place.title),
                    place.go,
                    text=place.title,
                    help=place.help,
                )


def go_to_target(app: Any, *, target: str | None = None, service: str | None = None) -> None:
    """Back to the main screen with the probe cursor on `target` (or `service`'s first one);
    a filter hiding it is cleared first."""
    while app.screen is not app.main_screen and len(app.screen_stack) > 2:
        app.pop_screen()
    view = app.main_screen.view
    table = view.probe_table

    def wanted() -> str | None:
        if target is not None:
            return target if target in table.ordered_targets else None
        return next(
            (t for t in table.ordered_targets if app.state.probes[t].service == service), None
        )

    if wanted() is None and table.filter_text:
        view.clear_filter()
    found = wanted()
    if found is None:
        app.notify(f"{target or service}: not in the probe list", severity="warning")
        return
    table.move_cursor(row=table.get_row_index(found))
    table.focus()


def pull_lever(app: Any, service: str, lever: str) -> None:
    """Open the lever dialog, as Enter on the lever in the mitigation panel does."""
    request_dialog(app.screen, ChangeRequested(service, lever))
