"""Step verifications: a tiny grammar over probe states, parsed to an AST and evaluated purely.

Grammar (clauses joined by ` and `):

    <target> is <state>[ or <state>]...
    <target> is not <state>[ or <state>]...
    all <service> targets are <state>[ or <state>]...

States: up, degraded, down, unknown. Evaluation is three-valued: `None` means "can't tell
yet" (a target is missing, or its probe has no result), so the console never marks a step
verified, or unverified, on data it does not have.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

_STATES = ("up", "degraded", "down", "unknown")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_AND = re.compile(r"\s+and\s+")

GRAMMAR_HINT = (
    "expected '<target> is <state>[ or <state>]', '<target> is not <state>' or "
    "'all <service> targets are <state>', joined by ' and '"
)


class ConditionError(ValueError):
    """A verification that does not follow the grammar; the message says what is wrong."""


class ProbeLike(Protocol):
    """What evaluation needs from a probe: `warroom.state.ProbeView` fits."""

    @property
    def state(self) -> str: ...

    @property
    def service(self) -> str: ...


class TargetIs(BaseModel):
    """`<target> is [not] <state>[ or <state>]`."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["target"] = "target"
    target: str
    states: tuple[str, ...]
    negated: bool = False

    def __str__(self) -> str:
        return f"{self.target} is {'not ' if self.negated else ''}{' or '.join(self.states)}"


class AllTargets(BaseModel):
    """`all <service> targets are <state>[ or <state>]`."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["all"] = "all"
    service: str
    states: tuple[str, ...]

    def __str__(self) -> str:
        return f"all {self.service} targets are {' or '.join(self.states)}"


class PromqlHolds(BaseModel):
    """`promql <query> <op> <number>`: holds while Prometheus agrees (the last clause).

    The console probes it as a promql target named `target` (see `Condition.promql`), so it
    is evaluated like `<target> is up`.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["promql"] = "promql"
    query: str
    condition: str

    @property
    def target(self) -> str:
        digest = hashlib.sha256(f"{self.query}\0{self.condition}".encode()).hexdigest()[:10]
        return f"promql:{digest}"

    def __str__(self) -> str:
        return f"promql {self.query} {self.condition.removeprefix('all value ')}"


Clause = Annotated[TargetIs | AllTargets | PromqlHolds, Field(discriminator="kind")]


class Condition(BaseModel):
    """A parsed verification: every clause must hold."""

    model_config = ConfigDict(frozen=True)

    clauses: tuple[Clause, ...]

    def __str__(self) -> str:
        return " and ".join(str(c) for c in self.clauses)

    @property
    def text(self) -> str:
        """The canonical text, as logged in `StepVerified.condition`."""
        return str(self)

    def targets(self) -> set[str]:
        """Target names the condition mentions directly."""
        return {c.target for c in self.clauses if isinstance(c, TargetIs)}

    def services(self) -> set[str]:
        """Services the condition's `all … targets` clauses cover."""
        return {c.service for c in self.clauses if isinstance(c, AllTargets)}

    def promql(self) -> list[PromqlHolds]:
        """The PromQL clauses: each needs a promql probe target named `clause.target`."""
        return [c for c in self.clauses if isinstance(c, PromqlHolds)]


def _states(words: list[str], text: str) -> tuple[str, ...]:
    if not words or len(words) % 2 == 0 or any(w != "or" for w in words[1::2]):
        raise ConditionError(f"verification {text!r} not understood: {GRAMMAR_HINT}")
    states = tuple(words[0::2])
    for state in states:
        if state not in _STATES:
            raise ConditionError(
                f"unknown state {state!r} in verification {text!r} (expected {', '.join(_STATES)})"
            )
    return states


def _name(word: str, what: str, text: str) -> str:
    if not _NAME.match(word):
        raise ConditionError(f"bad {what} name {word!r} in verification {text!r}")
    return word


def _clause(text: str, whole: str) -> TargetIs | AllTargets:
    words = text.split()
    if len(words) >= 5 and words[0] == "all" and words[2] in ("targets", "target"):
        if words[3] not in ("are", "is"):
            raise ConditionError(f"verification {whole!r} not understood: {GRAMMAR_HINT}")
        return AllTargets(
            service=_name(words[1], "service", whole), states=_states(words[4:], whole)
        )
    if len(words) >= 3 and words[1] == "is":
        negated = words[2] == "not"
        rest = words[3:] if negated else words[2:]
        return TargetIs(
            target=_name(words[0], "target", whole),
            states=_states(rest, whole),
            negated=negated,
        )
    raise ConditionError(f"verification {whole!r} not understood: {GRAMMAR_HINT}")


_PROMQL = re.compile(r"(?:^|\s+and\s+)promql\s+(?P<rest>.+)$", re.DOTALL)
_PROMQL_TAIL = re.compile(
    r"^(?P<query>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<n>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$",
    re.DOTALL,
)


def _promql_clause(rest: str, whole: str) -> PromqlHolds:
    match = _PROMQL_TAIL.match(rest.strip())
    if not match or not match["query"].strip():
        raise ConditionError(
            f"verification {whole!r}: expected 'promql <query> <op> <number>', e.g. "
            "'promql sum(rate(errors_total[1m])) < 0.01'"
        )
    return PromqlHolds(
        query=match["query"].strip(), condition=f"all value {match['op']} {match['n']}"
    )


def parse_condition(text: str) -> Condition:
    """Parse a `verify:` annotation; raises `ConditionError` naming what is wrong."""
    stripped = text.strip()
    if not stripped:
        raise ConditionError(f"empty verification: {GRAMMAR_HINT}")
    # A PromQL query may itself say `and`: a promql clause is the last one and takes the rest.
    found = _PROMQL.search(stripped)
    head, promql = (stripped[: found.start()], found["rest"]) if found else (stripped, None)
    clauses: list[TargetIs | AllTargets | PromqlHolds] = [
        _clause(part, stripped) for part in _AND.split(head) if head
    ]
    if promql is not None:
        clauses.append(_promql_clause(promql, stripped))
    return Condition(clauses=tuple(clauses))


def _probe_holds(probe: Any, states: tuple[str, ...], negated: bool) -> bool | None:
    state = getattr(probe, "state", "unknown") or "unknown"
    if state == "unknown" and "unknown" not in states:
        return None
    return (state in states) != negated


def _all_of(values: list[bool | None]) -> bool | None:
    """Kleene AND: any False wins, then any None, else True."""
    if any(v is False for v in values):
        return False
    if any(v is None for v in values):
        return None
    return True


def _service_of(name: str, probe: Any) -> str:
    return getattr(probe, "service", "") or name


def evaluate_clause(
    clause: TargetIs | AllTargets | PromqlHolds, probes: Mapping[str, Any]
) -> bool | None:
    if isinstance(clause, PromqlHolds):
        probe = probes.get(clause.target)
        return None if probe is None else _probe_holds(probe, ("up",), False)
    if isinstance(clause, TargetIs):
        probe = probes.get(clause.target)
        if probe is None:
            return None
        return _probe_holds(probe, clause.states, clause.negated)
    members = [p for name, p in probes.items() if _service_of(name, p) == clause.service]
    if not members:
        return None
    return _all_of([_probe_holds(p, clause.states, False) for p in members])


def evaluate(condition: Condition, probes: Mapping[str, Any]) -> bool | None:
    """True when every clause holds, False when one fails, None when one can't be told yet.

    `probes` maps target name to anything with `.state` and `.service` (e.g. `ProbeView`);
    a probe with an empty service counts as its target's name, as in the probe config.
    """
    return _all_of([evaluate_clause(c, probes) for c in condition.clauses])
