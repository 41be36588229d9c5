"""Command palette provider: every action in the registry, by name, for the current screen."""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from warroom.tui.actions import APP, ActionSpec, actions_for


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
