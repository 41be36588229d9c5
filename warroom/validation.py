"""What every strict input model shares: the base, durations, depth, and one-line errors.

Config, controls and (later) scenarios are validated with pydantic; a typo must never turn
silently into a default, and a bad value must be one line naming the key path
(`targets[2].timeout: ...`), never a traceback. Durations must be finite and at most
MAX_DURATION: `interval = nan` busy-looped and `timeout = inf` never timed out.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from warroom.durations import format_duration, parse_duration

#: No duration in a config (interval, timeout, reminder) is longer than a day.
MAX_DURATION = 86400.0
#: Deeper nesting than this in parsed input is refused before validation (and before any
#: recursive code, such as orjson's 255-level limit, meets it).
MAX_DEPTH = 32
_HINT = "(use e.g. 500ms, 2s)"


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must not silently become a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _duration(value: Any) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} {_HINT}")
    try:
        seconds = parse_duration(value)
    except (ValueError, OverflowError):
        raise ValueError(f"not a duration: {value!r} {_HINT}") from None
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {value!r} (must be a finite time, e.g. 2s)")
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most {format_duration(MAX_DURATION)}, got {value!r}")
    return seconds


def _positive_duration(value: Any) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError(f"must be more than zero, got {value!r}")
    return seconds


#: Seconds, written as "500ms", "2s", "1m30s" or a bare number of seconds.
Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]


def nesting_error(data: Any, limit: int = MAX_DEPTH) -> str | None:
    """`key.path: nested more than N levels deep` for the first too-deep value, or None."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if len(loc) > limit:
            return f"{format_loc(loc[:limit])}: nested more than {limit} levels deep"
        if isinstance(value, dict):
            stack.extend((v, (*loc, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*loc, i)) for i, v in enumerate(value))
    return None


class KeyPathError(ValueError):
    """A whole-config check that knows the exact key path it is about."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `loc` accepts, for "did you mean" hints."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None) if isinstance(current, type) else None
        info = fields.get(part) if fields else None
        if info is None:
            info = next((f for f in current.model_fields.values() if f.alias == part), None)
        if info is None:
            return []
        annotation = info.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            inner = getattr(candidate, "__args__", (candidate,))
            models = [c for c in (candidate, *inner) if isinstance(c, type)]
            match = next((c for c in models if issubclass(c, BaseModel)), None)
            if match is not None:
                current = match
                break
        else:
            return []
    return [f.alias or name for name, f in current.model_fields.items()]


def describe_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line for the first problem: `key.path: what is wrong` (plus how many more)."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    message = first["msg"]
    ctx_error = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_error, KeyPathError):
        path, message = ctx_error.path, ctx_error.message
    else:
        path = format_loc(loc)
        if first["type"] == "extra_forbidden":
            allowed = allowed_keys(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif first["type"] == "missing":
            message = "required key is missing"
        else:
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
            if first["type"] not in ("value_error", "assertion_error"):
                message += f", got {first['input']!r}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {message}{more}" if path else f"{message}{more}"
