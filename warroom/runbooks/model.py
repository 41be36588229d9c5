"""The parsed shape of a runbook, shared by the parser, the linter, suggestions and the console."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from warroom.errors import WarroomError
from warroom.events import ControlValue
from warroom.runbooks.conditions import Condition

#: Probe states a runbook's front matter and verifications may name.
STATES: tuple[str, ...] = ("up", "degraded", "down", "unknown")
#: States a runbook applies to when its front matter names none.
DEFAULT_STATES: tuple[str, ...] = ("down", "degraded")
#: Fenced-block languages that make a runnable step command (Runme's shell languages).
SHELL_LANGS: frozenset[str] = frozenset({"sh", "bash", "shell"})
#: `services: ["*"]` marks a general runbook, suggested last whenever anything is bad.
ANY_SERVICE = "*"


class Problem(BaseModel):
    """One thing wrong with a runbook file, located as `file:line`."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RunbookError(WarroomError):
    """A runbook that cannot be used as written; the message reads `file:line: message`."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.detail = message

    @classmethod
    def from_problem(cls, problem: Problem) -> RunbookError:
        return cls(problem.file, problem.line, problem.message)


class Action(BaseModel):
    """A control to pull from a step: `service/control = value`."""

    model_config = ConfigDict(frozen=True)

    service: str
    control: str
    value: ControlValue
    #: The annotation text as written, e.g. `dynamodb/dns_automation = false`.
    raw: str

    def __str__(self) -> str:
        return self.raw


class Command(BaseModel):
    """A shell block (```sh / bash / shell) under a step that the responder may run."""

    model_config = ConfigDict(frozen=True)

    lang: str
    code: str
    #: 1-based line of the opening fence in the file.
    line: int


class Step(BaseModel):
    """A `- [ ]` task item with its annotations."""

    model_config = ConfigDict(frozen=True)

    #: Stable slug of the step text (or an explicit `- id:` annotation), unique in the runbook.
    id: str
    #: 1-based line of the `- [ ]` item in the file.
    line: int
    #: The step's first paragraph after the checkbox, as inline Markdown.
    text: str
    checked_in_source: bool = False
    action: Action | None = None
    verify: Condition | None = None
    commands: list[Command] = Field(default_factory=list)
    #: Everything else under the item (prose, code, sub-lists), dedented; annotations left out.
    body_markdown: str = ""
    #: Title of the heading the step sits under ("" before the first heading).
    section: str = ""


class Section(BaseModel):
    """A heading and the Markdown under it, up to the next heading of the same or higher level."""

    model_config = ConfigDict(frozen=True)

    title: str
    level: int
    #: 1-based line of the heading in the file.
    line: int
    #: The section's content without its heading line (subsections included).
    markdown: str


class Runbook(BaseModel):
    """One runbook file, parsed."""

    model_config = ConfigDict(frozen=True)

    #: The file stem, e.g. `dns-record-missing`.
    id: str
    path: Path
    title: str
    services: list[str] = Field(default_factory=list)
    states: list[str] = Field(default_factory=lambda: list(DEFAULT_STATES))
    severity: str | None = None
    #: Alertmanager alert names (`alertname`) this runbook answers.
    alerts: list[str] = Field(default_factory=list)
    #: The Markdown after the front matter.
    body: str = ""
    #: The whole file as read, front matter included.
    source: str = ""
    sections: list[Section] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)

    @property
    def is_general(self) -> bool:
        """True for a runbook that applies to any service (`services: ["*"]`)."""
        return ANY_SERVICE in self.services

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def section(self, title: str) -> Section | None:
        """The first section with this title (case-insensitive), e.g. `Mitigation`."""
        wanted = title.casefold()
        return next((s for s in self.sections if s.title.casefold() == wanted), None)
