"""The `warroom.toml` model: probe targets and their defaults, runbook folders, incident settings.

Everything is validated with pydantic and unknown keys are errors (a typo must not silently
turn into a default). `load_config` turns every problem into one `WarroomError` line naming
the file and either the line (TOML syntax) or the key path (`targets[2].timeout: ...`).
The simulated fleet serves the same shape on `GET /targets`, read by `config_from_sim`.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from warroom.controls.model import ControlConfig
from warroom.errors import WarroomError
from warroom.store.url import StoreURLError, parse_url
from warroom.trust import check_trusted, read_regular_file
from warroom.validation import (
    KeyPathError,
    PositiveDuration,
    Strict,
    describe_validation_error,
    nesting_error,
)

DEFAULT_CONFIG_FILE = "warroom.toml"

ProbeKind = Literal["http", "tcp", "dns", "promql"]
KINDS: tuple[ProbeKind, ...] = ("http", "tcp", "dns", "promql")


Threshold = Annotated[int, Field(ge=1, le=100)]


def split_host_port(
    text: str, default_port: int | None = None, *, any_port: bool = False
) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port"); raise ValueError naming what is wrong.

    `any_port`: a listening address, where port 0 means "any free port"."""
    text = text.strip()
    match = re.fullmatch(
        r"\[(?P<h6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<h>[^:\s]+)(?::(?P<p>\d+))?", text
    )
    if not match:
        raise ValueError(f"not host:port: {text!r}")
    host = match.group("h6") or match.group("h")
    port_text = match.group("p6") or match.group("p")
    if port_text is None:
        if default_port is None:
            raise ValueError(f"missing port in {text!r} (use host:port)")
        return host, default_port
    port = int(port_text)
    if not (0 if any_port else 1) <= port < 65536:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


class Expect(Strict):
    """Conditions a result must meet to count as a success."""

    status: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        default=None, description="allowed HTTP status codes (default: any 2xx)"
    )
    body_contains: str | None = None
    json_fields: dict[str, Any] | None = Field(
        default=None, alias="json", description='dotted path -> value, e.g. {"db.ok" = true}'
    )
    max_latency: PositiveDuration | None = None
    resolves: bool = True
    contains_address: str | None = None

    @field_validator("contains_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"not an IP address: {value!r}") from None
        return value


class Defaults(Strict):
    """Settings every target inherits unless it sets its own."""

    interval: PositiveDuration = 10.0
    timeout: PositiveDuration = 2.0
    failure_threshold: Threshold = 2
    success_threshold: Threshold = 2
    degraded_latency: PositiveDuration | None = None
    keepalive: bool = False


class TargetConfig(Strict):
    """One `[[targets]]` entry as written; `resolve()` applies the defaults."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    service: str | None = None
    http: str | None = None
    tcp: str | None = None
    dns: str | None = None
    promql: str | None = Field(default=None, max_length=4000)
    nameserver: str | None = None
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    expect: Expect = Field(default_factory=Expect)
    failure_threshold: Threshold | None = None
    success_threshold: Threshold | None = None
    degraded_latency: PositiveDuration | None = None
    tags: list[str] = Field(default_factory=list)
    keepalive: bool | None = None
    #: promql targets: the Prometheus to ask (default `[prometheus] url`) and what must hold.
    prometheus: str | None = None
    condition: str | None = Field(
        default=None, description='e.g. "value < 0.01", "all values >= 1", "empty"'
    )

    @field_validator("prometheus")
    @classmethod
    def _prometheus(cls, value: str | None) -> str | None:
        return _prometheus_url(value) if value is not None else None

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            from warroom.probe.promql import parse_value_condition

            parse_value_condition(value)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip() or any(ch.isspace() and ch != " " for ch in value):
            raise ValueError(f"name must not have surrounding or control whitespace: {value!r}")
        return value

    @field_validator("http")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None:
            if not re.match(r"(?i)^https?://[^/\s]+", value):
                raise ValueError(f"not an http(s) URL: {value!r}")
            try:
                urlsplit(value).port  # noqa: B018 (raises for a port out of range)
            except ValueError:
                raise ValueError(f"port out of range in {value!r}") from None
        return value

    @field_validator("tcp")
    @classmethod
    def _tcp(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value)
        return value

    @field_validator("nameserver")
    @classmethod
    def _nameserver(cls, value: str | None) -> str | None:
        if value is not None:
            host, _ = split_host_port(value, default_port=53)
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"nameserver must be an IP address: {value!r}") from None
        return value

    @field_validator("dns")
    @classmethod
    def _dns(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+\.?", value):
            raise ValueError(f"not a DNS name: {value!r}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> TargetConfig:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of {', '.join(KINDS)}{found}")
        if self.nameserver is not None and given[0] != "dns":
            raise ValueError("nameserver is only for dns targets")
        if given[0] != "promql" and (self.condition is not None or self.prometheus is not None):
            raise ValueError("condition and prometheus are only for promql targets")
        if given[0] == "promql" and not (self.promql or "").strip():
            raise ValueError("promql: the query is empty")
        return self

    @property
    def kind(self) -> ProbeKind:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    def resolve(self, defaults: Defaults, prometheus: str | None = None) -> Target:
        kind = self.kind
        if kind == "promql":
            return self._resolve_promql(defaults, prometheus)
        return Target(
            name=self.name,
            service=self.service or self.name,
            kind=kind,
            address=getattr(self, kind),
            nameserver=self.nameserver,
            interval=self.interval if self.interval is not None else defaults.interval,
            timeout=self.timeout if self.timeout is not None else defaults.timeout,
            expect=self.expect,
            failure_threshold=self.failure_threshold or defaults.failure_threshold,
            success_threshold=self.success_threshold or defaults.success_threshold,
            degraded_latency=(
                self.degraded_latency
                if self.degraded_latency is not None
                else defaults.degraded_latency
            ),
            tags=tuple(self.tags),
            keepalive=self.keepalive if self.keepalive is not None else defaults.keepalive,
        )

    def _resolve_promql(self, defaults: Defaults, prometheus: str | None) -> Target:
        url = self.prometheus or prometheus
        if url is None:
            raise ValueError("a promql target needs prometheus = URL or a [prometheus] url")
        return Target(
            name=self.name,
            service=self.service or self.name,
            kind="promql",
            address=(self.promql or "").strip(),
            interval=self.interval if self.interval is not None else defaults.interval,
            timeout=self.timeout if self.timeout is not None else defaults.timeout,
            expect=self.expect,
            failure_threshold=self.failure_threshold or defaults.failure_threshold,
            success_threshold=self.success_threshold or defaults.success_threshold,
            # A query's latency is Prometheus's, not the service's: never "degraded" by it.
            degraded_latency=None,
            tags=tuple(self.tags),
            prometheus_url=url,
            condition=self.condition or "value > 0",
        )


@dataclass(frozen=True, slots=True)
class Target:
    """A probe target with every default applied: what the engine runs."""

    name: str
    service: str
    kind: ProbeKind
    address: str
    interval: float
    timeout: float
    expect: Expect = field(default_factory=Expect)
    nameserver: str | None = None
    failure_threshold: int = 2
    success_threshold: int = 2
    degraded_latency: float | None = None
    tags: tuple[str, ...] = ()
    keepalive: bool = False
    #: promql targets only: the Prometheus base URL and the condition the result must meet.
    prometheus_url: str | None = None
    condition: str | None = None


def _prometheus_url(value: str) -> str:
    if not re.match(r"(?i)^https?://[^/\s]+", value):
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


class PrometheusSettings(Strict):
    """`[prometheus]`: where promql targets are asked by default."""

    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _prometheus_url(value)


class AlertsSettings(Strict):
    """`[alerts]`: the Alertmanager webhook receiver and the API poll that keeps it right."""

    listen: str = Field(default="127.0.0.1:9095", description="host:port of the webhook")
    path: str = "/alerts"
    token: str | None = Field(default=None, description="bearer token; may be ${ENV}")
    token_file: str | None = None
    alertmanager: str | None = Field(default=None, description="Alertmanager URL to poll")
    poll_interval: PositiveDuration = 15.0
    service_labels: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["service", "app", "job"]
    )
    max_body: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _ = split_host_port(value, any_port=True)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"listen needs an IP address, not a name: {value!r}") from None
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
            raise ValueError(f"not a URL path: {value!r}")
        return value

    @field_validator("alertmanager")
    @classmethod
    def _alertmanager(cls, value: str | None) -> str | None:
        return _prometheus_url(value) if value is not None else None

    @model_validator(mode="after")
    def _one_token(self) -> AlertsSettings:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of token (may be ${ENV}) and token_file")
        return self


class IncidentSettings(Strict):
    """`[incident]`: how the console nags during an incident."""

    status_update_interval: PositiveDuration = Field(
        default=1800.0, description="reminder to post a status update at SEV1"
    )
    two_person: bool = Field(
        default=False, description="dangerous levers wait for a second responder's confirmation"
    )


class StoreSettings(Strict):
    """`[store]`: where the team's incident lives when the console is given no `--log`."""

    url: str = Field(description="postgresql://[user@]host[:port]/db?incident=ID")

    @field_validator("url")
    @classmethod
    def _store_url(cls, value: str) -> str:
        try:
            parsed = parse_url(value)
        except StoreURLError as exc:
            raise ValueError(str(exc)) from None
        userinfo = urlsplit(value).netloc.rpartition("@")[0]
        if ":" in userinfo:
            # The file is shared and often committed; libpq has places meant for secrets.
            raise ValueError(
                f"{parsed.display}: no password in warroom.toml; use ~/.pgpass or $PGPASSWORD"
            )
        return value


class WarroomConfig(Strict):
    """The whole `warroom.toml`."""

    defaults: Defaults = Field(default_factory=Defaults)
    targets: list[TargetConfig] = Field(default_factory=list)
    runbook_dirs: list[str] = Field(default_factory=list)
    incident: IncidentSettings = Field(default_factory=IncidentSettings)
    #: `[[controls]]`: mitigation levers (see warroom.controls.model.ControlConfig).
    controls: list[ControlConfig] = Field(default_factory=list)
    prometheus: PrometheusSettings | None = None
    alerts: AlertsSettings | None = None
    store: StoreSettings | None = None

    @model_validator(mode="after")
    def _promql_has_prometheus(self) -> WarroomConfig:
        for index, target in enumerate(self.targets):
            if target.promql is not None and target.prometheus is None and not self.prometheus:
                raise KeyPathError(
                    f"targets[{index}].promql",
                    "no Prometheus to ask: set prometheus = URL here or [prometheus] url",
                )
        return self

    @model_validator(mode="after")
    def _unique_controls(self) -> WarroomConfig:
        seen: dict[tuple[str, str], int] = {}
        for index, control in enumerate(self.controls):
            key = (control.service, control.control)
            if key in seen:
                raise KeyPathError(
                    f"controls[{index}].control",
                    f"duplicate control {control.service}/{control.control} "
                    f"(also controls[{seen[key]}])",
                )
            seen[key] = index
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> WarroomConfig:
        seen: dict[str, int] = {}
        for index, target in enumerate(self.targets):
            if target.name in seen:
                raise KeyPathError(
                    f"targets[{index}].name",
                    f"duplicate target name {target.name!r} (also targets[{seen[target.name]}])",
                )
            seen[target.name] = index
        return self

    def resolved_targets(self) -> list[Target]:
        prometheus = self.prometheus.url if self.prometheus else None
        return [target.resolve(self.defaults, prometheus) for target in self.targets]


def parse_config(data: Any, source: str = DEFAULT_CONFIG_FILE) -> WarroomConfig:
    """Validate already-parsed TOML/JSON data; errors name `source` and the key path."""
    too_deep = nesting_error(data)
    if too_deep is not None:
        raise WarroomError(f"{source}: {too_deep}")
    try:
        return WarroomConfig.model_validate(data)
    except ValidationError as exc:
        raise WarroomError(f"{source}: {describe_validation_error(exc, WarroomConfig)}") from None


_TOML_POS = re.compile(r"^(?P<msg>.*?) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def load_config(path: str | Path) -> WarroomConfig:
    """Read and validate a `warroom.toml`; runbook folders become relative to its directory."""
    path = Path(path)
    try:
        check_trusted(path, "config")
        raw = read_regular_file(path)
    except FileNotFoundError:
        raise WarroomError(f"{path}: no such file") from None
    except OSError as exc:
        raise WarroomError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise WarroomError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise WarroomError(f"{path}: TOML nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        match = _TOML_POS.match(text)
        if match:
            raise WarroomError(
                f"{path}:{match['line']}:{match['col']}: TOML syntax error: {match['msg']}"
            ) from None
        raise WarroomError(f"{path}: TOML syntax error: {text}") from None
    config = parse_config(data, str(path))
    base = path.resolve().parent
    dirs = [
        str((base / d).resolve()) if not Path(d).is_absolute() else d for d in config.runbook_dirs
    ]
    return config.model_copy(update={"runbook_dirs": dirs})


def find_default_config(cwd: Path | None = None) -> Path | None:
    """`./warroom.toml` if present."""
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_FILE
    return candidate if candidate.is_file() else None


def _sim_targets_url(url: str) -> str:
    return url.rstrip("/") + "/targets"


def _parse_sim_response(url: str, status: int, body: bytes) -> WarroomConfig:
    source = _sim_targets_url(url)
    if status != 200:
        raise WarroomError(f"{source}: HTTP {status}")
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WarroomError(f"{source}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WarroomError(f"{source}: expected a JSON object")
    return parse_config(data, source)


def config_from_sim(url: str, timeout: float = 5.0) -> WarroomConfig:
    """Fetch the probe config from a simulated fleet's admin URL (`GET URL/targets`)."""
    import httpx

    try:
        response = httpx.get(_sim_targets_url(url), timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        raise WarroomError(f"{_sim_targets_url(url)}: {exc or type(exc).__name__}") from None
    return _parse_sim_response(url, response.status_code, response.content)


async def aconfig_from_sim(url: str, timeout: float = 5.0) -> WarroomConfig:
    """`config_from_sim` for code already inside an event loop (the console)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.get(_sim_targets_url(url))
    except httpx.HTTPError as exc:
        raise WarroomError(f"{_sim_targets_url(url)}: {exc or type(exc).__name__}") from None
    return _parse_sim_response(url, response.status_code, response.content)
