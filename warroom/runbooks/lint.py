"""What `warroom runbook lint` adds to the parser's problems: annotations it would not honour.

The parser reads an annotation only as the first paragraph of a list item under a `- [ ]`
step; written any other way (a continuation line of the step, a plain line under it) it is
silently prose, and a responder believes a step is verified or wired to a lever when it is not.
With a config, actions must name its levers and verifications its targets and services.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from warroom.config import WarroomConfig
from warroom.runbooks.model import ANY_SERVICE, Problem, Runbook

_ANNOTATION_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<marker>(?:[-*+]|\d{1,9}[.)])[ \t]+)?(?P<key>action|verify|id)"
    r"[ \t]*:[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
_SERVICES_LINE = re.compile(r"^services[ \t]*:", re.IGNORECASE)


def _names(values: Iterable[str], limit: int = 8) -> str:
    ordered = sorted(set(values))
    if not ordered:
        return "none"
    shown = ", ".join(ordered[:limit])
    return shown + (f", … ({len(ordered)} in all)" if len(ordered) > limit else "")


def _annotation_lines(runbook: Runbook) -> list[tuple[int, str, bool]]:
    """(line, key, is a list item) for every line that reads as an annotation, outside code."""
    source = runbook.source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = source.split("\n")
    offset = len(lines) - len(runbook.body.split("\n"))
    found: list[tuple[int, str, bool]] = []
    fence: str | None = None
    for index in range(offset, len(lines)):
        text = lines[index]
        opened = _FENCE.match(text)
        if opened:
            fence = None if fence == opened.group(1) else (fence or opened.group(1))
            continue
        if fence is not None:
            continue
        match = _ANNOTATION_LINE.match(text)
        if match is None:
            continue
        key, value = match["key"], match["value"].strip()
        # The parser's rule: prose such as "Verify: the queue drains" is not an annotation.
        if key.islower() or (value.startswith("`") and value.endswith("`")):
            found.append((index + 1, key.lower(), match["marker"] is not None))
    return found


def unread_annotations(runbook: Runbook, reported: set[int]) -> list[Problem]:
    """Annotation lines the parser does not read (and has not already reported)."""
    problems = []
    for line, key, listed in _annotation_lines(runbook):
        if listed or line in reported:
            continue
        problems.append(
            Problem(
                file=str(runbook.path),
                line=line,
                message=f"'{key}:' here is not read (it is part of the text above it): write "
                f"it as its own list item, '- {key}: …', indented under the step's '- [ ]' line",
            )
        )
    return problems


def _first_line_after(lines: list[tuple[int, str, bool]], key: str, after: int) -> int:
    return next((line for line, k, listed in lines if k == key and listed and line > after), after)


def against_config(runbook: Runbook, config: WarroomConfig) -> list[Problem]:
    """Services, levers and targets a runbook names that the config does not have."""
    file = str(runbook.path)
    targets = {t.name for t in config.targets}
    services = {t.service or t.name for t in config.targets}
    services |= {c.service for c in config.controls}
    levers = {f"{c.service}/{c.control}" for c in config.controls}
    problems: list[Problem] = []
    source_lines = runbook.source.replace("\r\n", "\n").split("\n")
    services_line = next(
        (i + 1 for i, text in enumerate(source_lines) if _SERVICES_LINE.match(text)), 1
    )
    for service in runbook.services:
        if service != ANY_SERVICE and service not in services:
            problems.append(
                Problem(
                    file=file,
                    line=services_line,
                    message=f"service {service!r} is not in the config (services: "
                    f"{_names(services)})",
                )
            )
    annotations = _annotation_lines(runbook)
    for step in runbook.steps:
        if step.action is not None:
            lever = f"{step.action.service}/{step.action.control}"
            if lever not in levers:
                problems.append(
                    Problem(
                        file=file,
                        line=_first_line_after(annotations, "action", step.line),
                        message=f"action: no lever {lever} in the config (levers: "
                        f"{_names(levers)})",
                    )
                )
        if step.verify is not None:
            line = _first_line_after(annotations, "verify", step.line)
            for target in sorted(step.verify.targets() - targets):
                problems.append(
                    Problem(
                        file=file,
                        line=line,
                        message=f"verify: no target {target!r} in the config (targets: "
                        f"{_names(targets)})",
                    )
                )
            for service in sorted(step.verify.services() - services):
                problems.append(
                    Problem(
                        file=file,
                        line=line,
                        message=f"verify: no service {service!r} in the config (services: "
                        f"{_names(services)})",
                    )
                )
    return problems
