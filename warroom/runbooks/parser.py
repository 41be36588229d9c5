"""Markdown runbook -> `Runbook`: front matter, sections, `- [ ]` steps and their annotations.

A runbook stays plain Markdown (it reads fine on GitHub or with `cat`); warroom only gives
meaning to a few conventions. Parsing is pure and collects every problem with its line, so the
linter can report them all and the console can keep going past a malformed file.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from warroom.runbooks.conditions import Condition, ConditionError, parse_condition
from warroom.runbooks.model import (
    ANY_SERVICE,
    DEFAULT_STATES,
    SHELL_LANGS,
    STATES,
    Action,
    Command,
    Problem,
    Runbook,
    RunbookError,
    Section,
    Step,
)
from warroom.trust import read_regular_file

#: Front-matter keys warroom reads.
KNOWN_KEYS: tuple[str, ...] = ("title", "services", "states", "severity", "alerts")
#: Keys that static-site generators (Hugo, Jekyll) put in runbook repos; accepted and ignored so
#: runbooks such as prometheus-operator's work unchanged.
IGNORED_KEYS: frozenset[str] = frozenset(
    {
        "weight",
        "description",
        "summary",
        "aliases",
        "tags",
        "categories",
        "keywords",
        "draft",
        "date",
        "lastmod",
        "linktitle",
        "layout",
        "slug",
        "url",
        "toc",
        "owner",
        "owners",
        "team",
        "author",
        "authors",
    }
)
SEVERITIES: tuple[str, ...] = ("SEV1", "SEV2", "SEV3", "SEV4")

_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\s*:(?:\s+(.*)|\s*)$")
_LIST_ITEM_LINE = re.compile(r"^\s+-\s+(.*)$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_ALERT_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_CHECKBOX = re.compile(r"^\[([ xX])\](?:\s+(.*))?$", re.DOTALL)
_ANNOTATION = re.compile(r"^(action|verify|id)\s*:\s*(.*)$", re.DOTALL | re.IGNORECASE)
_ACTION = re.compile(r"^([A-Za-z0-9_.-]+)\s*/\s*([A-Za-z0-9_.-]+)\s*=\s*(\S.*)$")
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)$")
_SLUG_MAX = 48

# Only block structure is needed (inline tokens keep their source text in `content`), so the
# inline pass, a fifth of the parse time, is skipped.
_markdown = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])


@dataclass
class _FrontMatter:
    values: dict[str, str | list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    #: Index of the first body line (0 when there is no front matter).
    body_start: int = 0


@dataclass
class _StepBuild:
    line: int
    text: str
    checked: bool
    section: str
    item_map: tuple[int, int]
    para_map: tuple[int, int]
    exclude: list[tuple[int, int]] = field(default_factory=list)
    action: Action | None = None
    action_line: int = 0
    verify: Condition | None = None
    verify_line: int = 0
    explicit_id: str | None = None
    id_line: int = 0
    commands: list[Command] = field(default_factory=list)


@dataclass
class _Item:
    level: int
    map: tuple[int, int]
    first: bool = True
    para_map: tuple[int, int] | None = None
    step: _StepBuild | None = None


class _Collector:
    """Problems of one file; `fatal` when nothing usable can be built from it."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.fatal = False

    def add(self, line: int, message: str, *, fatal: bool = False) -> None:
        self.problems.append(Problem(file=self.file, line=line, message=message))
        self.fatal = self.fatal or fatal


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _strip_comment(text: str) -> str:
    if text[:1] in "\"'[":
        return text
    return re.split(r"\s+#", text, maxsplit=1)[0].strip()


def _parse_value(raw: str, line: int, out: _Collector) -> str | list[str]:
    raw = _strip_comment(raw.strip())
    if raw.startswith("["):
        if not raw.endswith("]"):
            out.add(line, f"bad front matter: list not closed with ']': {raw}")
            raw = raw + "]"
        inner = raw[1:-1].strip()
        return [_unquote(part) for part in inner.split(",") if part.strip()] if inner else []
    return _unquote(raw)


def _front_matter(lines: list[str], out: _Collector) -> _FrontMatter:
    fm = _FrontMatter()
    if not lines or lines[0].rstrip() != "---":
        return fm
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        out.add(1, "unterminated front matter: no closing '---' line", fatal=True)
        return fm
    fm.body_start = end + 1
    key: str | None = None
    for index in range(1, end):
        text, line = lines[index], index + 1
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        item = _LIST_ITEM_LINE.match(text)
        if item and key is not None and isinstance(fm.values.get(key), list):
            value = fm.values[key]
            assert isinstance(value, list)
            value.append(_unquote(_strip_comment(item.group(1))))
            continue
        match = _KEY_LINE.match(text)
        if not match:
            out.add(line, f"bad front matter line (expected 'key: value'): {text.strip()}")
            key = None
            continue
        key, raw = match.group(1), match.group(2) or ""
        if key in fm.lines:
            out.add(line, f"duplicate front-matter key {key!r} (first on line {fm.lines[key]})")
        fm.lines[key] = line
        # An empty value may open a YAML block list (`key:` then `  - item` lines).
        next_is_item = index + 1 < end and _LIST_ITEM_LINE.match(lines[index + 1]) is not None
        fm.values[key] = [] if not raw.strip() and next_is_item else _parse_value(raw, line, out)
    return fm


def _as_list(value: str | list[str]) -> list[str]:
    if isinstance(value, list):
        return [v.strip() for v in value if v.strip()]
    return [v.strip() for v in value.split(",") if v.strip()]


def _read_front_matter(fm: _FrontMatter, out: _Collector) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in fm.values.items():
        line = fm.lines[key]
        if key.lower() in IGNORED_KEYS:
            continue
        if key not in KNOWN_KEYS:
            out.add(line, f"unknown front-matter key {key!r} (known: {', '.join(KNOWN_KEYS)})")
            continue
        if key == "title":
            if isinstance(value, list):
                out.add(line, "title must be text, not a list")
            elif not value.strip():
                out.add(line, "empty title")
            else:
                result["title"] = value.strip()
        elif key == "services":
            services = _as_list(value)
            for name in services:
                if name != ANY_SERVICE and not _NAME.match(name):
                    out.add(line, f"bad service name {name!r}")
            result["services"] = [s for s in services if s == ANY_SERVICE or _NAME.match(s)]
        elif key == "states":
            states = []
            for state in _as_list(value):
                if state.lower() in STATES:
                    states.append(state.lower())
                else:
                    out.add(line, f"unknown state {state!r} (expected {', '.join(STATES)})")
            if states:
                result["states"] = states
        elif key == "alerts":
            alerts = _as_list(value)
            for name in alerts:
                if not _ALERT_NAME.match(name):
                    out.add(
                        line,
                        f"bad alert name {name!r} (Prometheus names: [A-Za-z_:][A-Za-z0-9_:]*)",
                    )
            result["alerts"] = [a for a in alerts if _ALERT_NAME.match(a)]
        elif key == "severity":
            text = value if isinstance(value, str) else ",".join(value)
            if text.strip().upper() in SEVERITIES:
                result["severity"] = text.strip().upper()
            elif text.strip():
                out.add(
                    line, f"unknown severity {text.strip()!r} (expected {', '.join(SEVERITIES)})"
                )
    return result


def parse_value(text: str) -> bool | int | float | str:
    """An action's value as the control API wants it: booleans and numbers typed, else text."""
    text = _unquote(text.strip())
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def parse_action(text: str) -> Action:
    """Parse `service/control = value`; raises `ValueError` saying what is wrong."""
    raw = " ".join(text.split())
    match = _ACTION.match(raw)
    if not match:
        raise ValueError(f"action not 'service/control = value': {raw!r}")
    service, control, value = match.groups()
    return Action(service=service, control=control, value=parse_value(value), raw=raw)


def _unwrap_code(text: str) -> str:
    text = " ".join(text.split())
    for fence in ("``", "`"):
        if len(text) > 2 * len(fence) and text.startswith(fence) and text.endswith(fence):
            return text[len(fence) : -len(fence)].strip()
    return text


def slugify(text: str) -> str:
    """A step id from its text: lowercase words joined by '-', cut at a word boundary."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"['’]", "", text)
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > _SLUG_MAX:
        cut = slug[:_SLUG_MAX]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug or "step"


def _fence_lang(info: str) -> str:
    return re.split(r"[\s{]", info.strip(), maxsplit=1)[0].lower() if info.strip() else ""


def _nearest_step(stack: list[_Item]) -> _StepBuild | None:
    return next((item.step for item in reversed(stack) if item.step is not None), None)


def _apply_annotation(step: _StepBuild, key: str, value: str, line: int, out: _Collector) -> None:
    if key == "action":
        if step.action is not None:
            out.add(line, f"step already has an action (line {step.action_line})")
            return
        try:
            step.action = parse_action(value)
            step.action_line = line
        except ValueError as exc:
            out.add(line, str(exc))
    elif key == "verify":
        if step.verify is not None:
            out.add(
                line,
                f"step already has a verification (line {step.verify_line}); "
                "join conditions with ' and '",
            )
            return
        try:
            step.verify = parse_condition(value)
            step.verify_line = line
        except ConditionError as exc:
            out.add(line, str(exc))
    else:
        if step.explicit_id is not None:
            out.add(line, f"step already has an id (line {step.id_line})")
        elif not _STEP_ID.match(value):
            out.add(line, f"bad step id {value!r} (use lowercase letters, digits and '-')")
        else:
            step.explicit_id = value
            step.id_line = line


def _body_markdown(lines: list[str], build: _StepBuild) -> str:
    start, end = build.item_map
    skipped = [build.para_map, *build.exclude]
    kept = [lines[i] for i in range(start, end) if not any(a <= i < b for a, b in skipped)]
    return textwrap.dedent("\n".join(kept)).strip("\n")


def _sections(lines: list[str], headings: list[tuple[str, int, int]], offset: int) -> list[Section]:
    sections = []
    for index, (title, level, start) in enumerate(headings):
        end = next((h[2] for h in headings[index + 1 :] if h[1] <= level), len(lines))
        markdown = "\n".join(lines[start + 1 : end]).strip("\n")
        sections.append(
            Section(title=title, level=level, line=start + offset + 1, markdown=markdown)
        )
    return sections


def _assign_ids(builds: list[_StepBuild], out: _Collector) -> list[str]:
    ids: list[str | None] = [None] * len(builds)
    first_line: dict[str, int] = {}
    for index, build in enumerate(builds):
        if build.explicit_id is None:
            continue
        if build.explicit_id in first_line:
            first = first_line[build.explicit_id]
            out.add(build.id_line, f"duplicate step id {build.explicit_id!r} (also line {first})")
            continue
        first_line[build.explicit_id] = build.id_line
        ids[index] = build.explicit_id
    used = set(first_line)
    for index, build in enumerate(builds):
        if ids[index] is not None:
            continue
        base = slugify(build.text)
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}-{n}", n + 1
        used.add(candidate)
        ids[index] = candidate
    return [i or "step" for i in ids]


def parse_runbook(text: str, path: Path | str) -> tuple[Runbook | None, list[Problem]]:
    """Parse a runbook's text. Returns the runbook (None if unusable) and every problem found.

    A runbook with problems in its annotations is still returned, without the bad
    annotations (the step stays a manual one), so one typo never hides a runbook mid-incident.
    """
    path = Path(path)
    out = _Collector(str(path))
    source = text
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    all_lines = text.split("\n")
    fm = _front_matter(all_lines, out)
    if out.fatal:
        return None, out.problems
    meta = _read_front_matter(fm, out)
    offset = fm.body_start
    lines = all_lines[offset:]
    body = "\n".join(lines)
    tokens: list[Token] = _markdown.parse(body)

    headings: list[tuple[str, int, int]] = []
    builds: list[_StepBuild] = []
    stack: list[_Item] = []
    section = ""
    pending_heading: Token | None = None
    for tok in tokens:
        if tok.type == "heading_open" and tok.map is not None:
            pending_heading = tok
            continue
        if tok.type == "inline" and pending_heading is not None:
            assert pending_heading.map is not None
            section = tok.content.strip()
            headings.append((section, int(pending_heading.tag[1:]), pending_heading.map[0]))
            pending_heading = None
            continue
        if tok.type == "list_item_open" and tok.map is not None:
            stack.append(_Item(level=tok.level, map=(tok.map[0], tok.map[1])))
            continue
        if tok.type == "list_item_close" and stack:
            item = stack.pop()
            if item.step is not None:
                builds.append(item.step)
            continue
        top = stack[-1] if stack else None
        if top is not None and top.first and tok.level == top.level + 1:
            if tok.type == "paragraph_open" and tok.map is not None:
                top.para_map = (tok.map[0], tok.map[1])
            else:
                top.first = False
        if (
            tok.type == "inline"
            and top is not None
            and top.first
            and top.para_map is not None
            and tok.level == top.level + 2
        ):
            top.first = False
            _classify(tok, top, stack, section, out, offset)
        if tok.type == "fence" and tok.map is not None:
            step = _nearest_step(stack)
            lang = _fence_lang(tok.info)
            if step is not None and lang in SHELL_LANGS:
                step.commands.append(
                    Command(lang=lang, code=tok.content, line=tok.map[0] + offset + 1)
                )

    builds.sort(key=lambda b: b.line)
    ids = _assign_ids(builds, out)
    steps = [
        Step(
            id=step_id,
            line=build.line,
            text=build.text,
            checked_in_source=build.checked,
            action=build.action,
            verify=build.verify,
            commands=build.commands,
            body_markdown=_body_markdown(lines, build),
            section=build.section,
        )
        for step_id, build in zip(ids, builds, strict=True)
    ]
    title = meta.get("title")
    if not isinstance(title, str):
        title = next((h[0] for h in headings if h[1] == 1), "") or path.stem
    runbook = Runbook(
        id=path.stem,
        path=path,
        title=title,
        services=list(meta.get("services", [])),  # type: ignore[call-overload]
        states=list(meta.get("states", DEFAULT_STATES)),  # type: ignore[call-overload]
        severity=meta.get("severity"),  # type: ignore[arg-type]
        alerts=list(meta.get("alerts", [])),  # type: ignore[call-overload]
        body=body,
        source=source,
        sections=_sections(lines, headings, offset),
        steps=steps,
    )
    return runbook, out.problems


def _classify(
    tok: Token, item: _Item, stack: list[_Item], section: str, out: _Collector, offset: int
) -> None:
    assert item.para_map is not None and tok.map is not None
    content = tok.content.strip()
    line = tok.map[0] + offset + 1
    checkbox = _CHECKBOX.match(content)
    if checkbox:
        text = " ".join((checkbox.group(2) or "").split())
        if not text:
            out.add(line, "step has no text after its checkbox")
        item.step = _StepBuild(
            line=line,
            text=text,
            checked=checkbox.group(1) != " ",
            section=section,
            item_map=item.map,
            para_map=item.para_map,
        )
        return
    annotation = _ANNOTATION.match(content)
    if not annotation:
        return
    key, raw = annotation.group(1), annotation.group(2)
    # Prose such as "Verify: the queue drains" is not an annotation: only a lowercase key, or
    # a code-quoted value, is.
    quoted = raw.strip().startswith("`") and raw.strip().endswith("`")
    if not (key.islower() or quoted):
        return
    owner = _nearest_step(stack[:-1])
    if owner is None:
        out.add(
            line, f"step annotation '{key.lower()}:' outside a step (put it under a '- [ ]' item)"
        )
        return
    value = _unwrap_code(raw)
    owner.exclude.append(item.map)
    _apply_annotation(owner, key.lower(), value, line, out)


def decode_source(data: bytes, file: str) -> tuple[str | None, Problem | None]:
    """Bytes -> text, or a problem naming the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        return None, Problem(file=file, line=line, message=f"not UTF-8 (byte 0x{byte})")


def read_runbook(path: Path | str) -> tuple[Runbook | None, list[Problem]]:
    """Read and parse one file; an unreadable or non-UTF-8 file is a problem, never a raise."""
    path = Path(path)
    try:
        data = read_regular_file(path)  # a FIFO named *.md must not hang whoever reads it
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, [Problem(file=str(path), line=1, message=f"cannot read file: {reason}")]
    text, problem = decode_source(data, str(path))
    if text is None:
        assert problem is not None
        return None, [problem]
    return parse_runbook(text, path)


def load_runbook(path: Path | str) -> Runbook:
    """Read and parse one runbook strictly: the first problem is raised as a `RunbookError`."""
    runbook, problems = read_runbook(path)
    if problems:
        raise RunbookError.from_problem(min(problems, key=lambda p: p.line))
    assert runbook is not None
    return runbook
