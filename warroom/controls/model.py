"""What a mitigation control is: its kind, bounds and how it is applied and read back.

Pure: no I/O here. `ControlSpec` is what the panel shows (the shape of the simulated fleet's
`GET /controls` entries); `ControlConfig` is a `[[controls]]` entry of `warroom.toml`, a spec
plus an HTTP or argv way to apply and read it. Templates are resolved structurally: a
placeholder such as `{value}` must be a whole JSON string or a whole argv element and is
replaced by the typed value, so a value can never be spliced into a command line or a URL.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from warroom.controls.words import NO_LIMIT, tidy_number, value_words
from warroom.events import ControlValue
from warroom.validation import PositiveDuration, Strict

#: Placeholders a template may use; each must be a whole string / argv element.
PLACEHOLDERS = ("value", "reason", "actor", "service", "control", "request_id", "from_value")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ENV_TOKEN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

DEFAULT_TIMEOUT_S = 5.0
_NO_LIMIT_WORDS = frozenset({"none", "no limit", "unlimited", "null", "off"})
DEFAULT_EFFECT_AFTER_S = 5.0

_TRUE = frozenset({"true", "on", "yes", "1", "enabled", "open"})
_FALSE = frozenset({"false", "off", "no", "0", "disabled", "closed"})


class ControlKind(StrEnum):
    TOGGLE = "toggle"
    LEVEL = "level"
    RATE = "rate"
    CHOICE = "choice"


class ControlSpec(BaseModel):
    """One lever as the panel shows it: no value (values are read from the service)."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=True)

    service: str
    control: str
    label: str = ""
    kind: ControlKind
    min: float | None = None
    max: float | None = None
    choices: list[str] = Field(default_factory=list)
    unit: str = ""
    dangerous: bool = False
    description: str = ""
    #: Two-person rule: a second responder confirms before the change is applied.
    needs_second: bool = False

    @field_validator("choices", "unit", "label", "description", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return [] if info.field_name == "choices" else ""
        return value

    @property
    def key(self) -> str:
        return f"{self.service}/{self.control}"

    @property
    def title(self) -> str:
        return self.label or self.control.replace("_", " ")

    @property
    def low(self) -> float:
        if self.min is not None:
            return self.min
        return 0.0

    @property
    def high(self) -> float | None:
        if self.max is not None:
            return self.max
        return 100.0 if self.kind == ControlKind.LEVEL else None

    @property
    def unit_text(self) -> str:
        if self.unit:
            return self.unit
        return {ControlKind.LEVEL: "%", ControlKind.RATE: "req/s"}.get(ControlKind(self.kind), "")


def _as_number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        number = float(raw)
    elif isinstance(raw, str):
        text = raw.strip().removesuffix("%").removesuffix("req/s").strip()
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
    else:
        raise ValueError(f"expected a number, got {raw!r}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return number


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected on/off (true/false), got {raw!r}")


def parse_value(spec: ControlSpec, raw: Any) -> ControlValue:
    """The typed value of something read back from a service (bounds not enforced: it is fact)."""
    kind = ControlKind(spec.kind)
    if kind == ControlKind.TOGGLE:
        return _as_bool(raw)
    if kind == ControlKind.RATE and (
        raw is None or (isinstance(raw, str) and raw.strip().lower() in _NO_LIMIT_WORDS)
    ):
        return NO_LIMIT
    if kind in (ControlKind.LEVEL, ControlKind.RATE):
        return tidy_number(_as_number(raw))
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, bool | int | float):
        return str(raw).lower() if isinstance(raw, bool) else str(raw)
    raise ValueError(f"expected one of {', '.join(spec.choices)}, got {raw!r}")


def coerce_value(spec: ControlSpec, raw: Any) -> ControlValue:
    """The typed value a responder asked for, checked against the kind and bounds.

    Raises ValueError with a one-line message a dialog can show as is.
    """
    value = parse_value(spec, raw)
    kind = ControlKind(spec.kind)
    if kind in (ControlKind.LEVEL, ControlKind.RATE) and value != NO_LIMIT:
        assert isinstance(value, int | float)
        high = spec.high
        if value < spec.low or (high is not None and value > high):
            upper = f"{tidy_number(high)}" if high is not None else "∞"
            unit = f" {spec.unit_text}" if spec.unit_text else ""
            raise ValueError(
                f"must be between {tidy_number(spec.low)} and {upper}{unit}, got {value}"
            )
    elif kind == ControlKind.CHOICE and spec.choices and value not in spec.choices:
        raise ValueError(f"must be one of {', '.join(spec.choices)}, got {value!r}")
    return value


def format_value(spec: ControlSpec, value: ControlValue | None) -> str:
    """A value as the panel shows it: `on`/`off`, `40 %`, `200 req/s`, `replica`, `?`."""
    return value_words(value, value_unit(spec))


def value_unit(spec: ControlSpec) -> str:
    """The unit a lever's values read with (recorded on its events, so the log and the report
    read them as the panel does): a level's or rate's, none for toggles and choices."""
    if ControlKind(spec.kind) in (ControlKind.LEVEL, ControlKind.RATE):
        return spec.unit_text
    return ""


def wire_value(value: ControlValue) -> ControlValue | None:
    """A value as sent in JSON: a rate's "no limit" is null."""
    return None if value == NO_LIMIT else value


def value_arg(value: ControlValue) -> str:
    """A value as one argv element: booleans as true/false, numbers without a trailing .0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{tidy_number(value)}"
    return str(value)


# -- templates ----------------------------------------------------------------------------


def check_template(obj: Any, where: str) -> None:
    """Raise ValueError if a placeholder is part of a longer string (it must be a whole one)."""
    if isinstance(obj, str):
        if _PLACEHOLDER.search(obj) and not _PLACEHOLDER.fullmatch(obj):
            found = _PLACEHOLDER.search(obj)
            assert found is not None
            raise ValueError(
                f"{where}: {found.group(0)} must be a whole string on its own, not part of "
                f"{obj!r} (values are never spliced into text)"
            )
    elif isinstance(obj, Mapping):
        for key, item in obj.items():
            check_template(item, f"{where}.{key}")
    elif isinstance(obj, list):
        for index, item in enumerate(obj):
            check_template(item, f"{where}[{index}]")


def resolve_template(obj: Any, values: Mapping[str, Any]) -> Any:
    """Copy `obj`, replacing every string that is exactly `{name}` by `values[name]` as is."""
    if isinstance(obj, str):
        match = _PLACEHOLDER.fullmatch(obj)
        return values[match.group(1)] if match and match.group(1) in values else obj
    if isinstance(obj, Mapping):
        return {key: resolve_template(item, values) for key, item in obj.items()}
    if isinstance(obj, list):
        return [resolve_template(item, values) for item in obj]
    return obj


class MissingEnvError(ValueError):
    """A header names a `${VAR}` that the environment does not have."""


def substitute_env(text: str, env: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """Replace `${NAME}` tokens from the environment; return the text and the secrets used."""
    source = os.environ if env is None else env
    used: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise MissingEnvError(f"environment variable {name} is not set")
        used.append(source[name])
        return source[name]

    return _ENV_TOKEN.sub(one, text), used


# -- config ---------------------------------------------------------------------------------


class _Strict(Strict):
    """`validation.Strict`, with enum fields stored as their values."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


def _check_url(value: str) -> str:
    if not re.match(r"(?i)^https?://[^/\s]+", value):
        raise ValueError(f"not an http(s) URL: {value!r}")
    if _PLACEHOLDER.search(value) or _ENV_TOKEN.search(value):
        raise ValueError(
            "the URL must not hold placeholders or ${VAR} tokens (use params, body or headers)"
        )
    return value


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if _PLACEHOLDER.search(text):
            raise ValueError(f"header {name}: placeholders are not allowed in headers")
        if "\n" in text or "\r" in text:
            raise ValueError(f"header {name}: must be one line")
    return value


Url = Annotated[str, AfterValidator(_check_url)]
Headers = Annotated[dict[str, str], AfterValidator(_check_headers)]


class HttpApply(_Strict):
    """Apply with an HTTP request; `body` and `params` are templates resolved structurally."""

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    url: Url
    headers: Headers = Field(default_factory=dict, description="may use ${ENV} tokens")
    params: dict[str, Any] = Field(default_factory=dict)
    body: Any = Field(default_factory=lambda: {"value": "{value}"})
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _templates(self) -> HttpApply:
        check_template(self.body, "body")
        check_template(self.params, "params")
        return self


class HttpRead(_Strict):
    """Read the current value back with `GET url` and a dotted JSON path (`field`)."""

    url: Url
    headers: Headers = Field(default_factory=dict, description="may use ${ENV} tokens")
    field: str = Field(default="value", min_length=1, description='dotted path, e.g. "flag.on"')


def _check_argv(value: list[str]) -> list[str]:
    if not value or not value[0]:
        raise ValueError("argv must start with the program to run")
    if _PLACEHOLDER.search(value[0]):
        raise ValueError("argv[0] must be the program, not a placeholder")
    check_template(value, "argv")
    return value


class ArgvApply(_Strict):
    """Apply by running a program (no shell); `{value}` is one whole argv element."""

    argv: Annotated[list[str], AfterValidator(_check_argv)]


class ArgvRead(_Strict):
    """Read the current value back as the stripped stdout of a program (no shell)."""

    argv: list[str]

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        _check_argv(value)
        if any(_PLACEHOLDER.search(part) for part in value):
            raise ValueError("a read-back command takes no placeholders")
        return value


class SilenceApply(_Strict):
    """A toggle that silences alerts: on creates an Alertmanager silence, off expires it.

    The silence's `endsAt` is the change's auto-revert time when there is one, else now plus
    `duration`; so a silence warroom forgets (crash, quit) still ends at Alertmanager.
    """

    alertmanager: Url
    matchers: Annotated[dict[str, str], Field(min_length=1)] = Field(
        description='label = value, e.g. { alertname = "ServiceDown", service = "cache" }'
    )
    duration: PositiveDuration = 3600.0


class SilenceRead(_Strict):
    """Read a silence lever back: on while an active silence with its matchers exists."""

    alertmanager: Url


def _one_of_http_argv(data: Any, http: type[BaseModel], argv: type[BaseModel]) -> Any:
    if isinstance(data, BaseModel):
        return data
    if isinstance(data, Mapping) and "alertmanager" in data:
        return (SilenceApply if http is HttpApply else SilenceRead).model_validate(data)
    if not isinstance(data, Mapping):
        raise ValueError("expected a table with either url (HTTP) or argv (command)")
    if "argv" in data and "url" in data:
        raise ValueError("give either url (HTTP) or argv (command), not both")
    if "argv" in data:
        return argv.model_validate(data)
    if "url" in data:
        return http.model_validate(data)
    raise ValueError("give either url (HTTP) or argv (command)")


ApplyConfig = Annotated[
    HttpApply | ArgvApply | SilenceApply,
    BeforeValidator(lambda d: _one_of_http_argv(d, HttpApply, ArgvApply)),
]
ReadConfig = Annotated[
    HttpRead | ArgvRead | SilenceRead,
    BeforeValidator(lambda d: _one_of_http_argv(d, HttpRead, ArgvRead)),
]


class ControlConfig(_Strict):
    """One `[[controls]]` entry of warroom.toml."""

    service: Annotated[str, Field(min_length=1, max_length=200)]
    control: Annotated[str, Field(min_length=1, max_length=200)]
    label: str = ""
    kind: ControlKind
    min: float | None = None
    max: float | None = None
    choices: list[str] = Field(default_factory=list)
    unit: str = ""
    dangerous: bool = False
    description: str = ""
    needs_second: bool = False
    timeout: PositiveDuration = DEFAULT_TIMEOUT_S
    effect_after: PositiveDuration = Field(
        default=DEFAULT_EFFECT_AFTER_S,
        description="when to take the 'after' probe readings that show what the lever did",
    )
    apply: ApplyConfig
    read: ReadConfig

    @field_validator("service", "control")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"use letters, digits, '_', '-' or '.', got {value!r}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> ControlConfig:
        kind = ControlKind(self.kind)
        if kind == ControlKind.CHOICE:
            if not self.choices:
                raise ValueError("a choice control needs choices = [...]")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError("choices must be distinct")
        elif self.choices:
            raise ValueError(f"choices are only for choice controls, not {kind}")
        if kind in (ControlKind.TOGGLE, ControlKind.CHOICE) and (
            self.min is not None or self.max is not None
        ):
            raise ValueError(f"min/max are only for level and rate controls, not {kind}")
        if kind == ControlKind.LEVEL:
            low = 0.0 if self.min is None else self.min
            high = 100.0 if self.max is None else self.max
            if not 0 <= low <= high <= 100:
                raise ValueError("a level is a percentage: need 0 <= min <= max <= 100")
        if kind == ControlKind.RATE:
            if self.min is not None and self.min < 0:
                raise ValueError("a rate cannot be negative")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError("min must not be above max")
        silence = isinstance(self.apply, SilenceApply), isinstance(self.read, SilenceRead)
        if any(silence):
            if not all(silence):
                raise ValueError("a silence lever reads back from Alertmanager too")
            if kind != ControlKind.TOGGLE:
                raise ValueError(f"a silence lever is a toggle, not {kind}")
        return self

    def spec(self) -> ControlSpec:
        return ControlSpec(
            service=self.service,
            control=self.control,
            label=self.label,
            kind=self.kind,
            min=self.min,
            max=self.max,
            choices=list(self.choices),
            unit=self.unit,
            dangerous=self.dangerous,
            description=self.description,
            needs_second=self.needs_second,
        )
