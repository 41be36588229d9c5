"""How a control is applied and read back: HTTP requests, argv commands, the sim's admin API.

Every call has a total deadline and reads a bounded amount of output, so a hanging or hostile
endpoint costs at most its timeout. Failures become a `ControlCallError` whose message is one
line with every secret (header `${ENV}` values, the admin token) replaced by `***`, so it can
be logged and shown as is.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import orjson

from warroom.alerts import silences
from warroom.controls.model import (
    DEFAULT_EFFECT_AFTER_S,
    DEFAULT_TIMEOUT_S,
    ArgvApply,
    ArgvRead,
    ControlConfig,
    ControlSpec,
    HttpApply,
    HttpRead,
    MissingEnvError,
    SilenceApply,
    parse_value,
    resolve_template,
    substitute_env,
    value_arg,
    wire_value,
)
from warroom.errors import WarroomError
from warroom.events import ControlValue, format_ts
from warroom.jsonpath import json_field
from warroom.processes import kill_group

#: Bytes of a response or of a command's output kept; the rest is read and dropped.
MAX_OUTPUT = 64 * 1024
#: Characters of a response kept in the log (`ControlApplied.response`).
MAX_SUMMARY = 200
REDACTED = "***"


class ControlError(WarroomError):
    """A change that cannot be asked for (unknown control, bad value, no reason, unconfirmed)."""


class ControlCallError(Exception):
    """Applying or reading a control failed; the message is one line, secrets redacted."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    @property
    def message(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a template may refer to besides the value."""

    value: ControlValue
    reason: str = ""
    actor: str = ""
    request_id: str = ""
    #: When the change is reverted automatically, if it is (a silence ends then too).
    ends_at: datetime | None = None
    #: The value the change starts from, for compare-and-set commands (`{from_value}`);
    #: read back just before applying when the caller does not know it.
    from_value: ControlValue | None = None


class Applier(Protocol):
    """Applies one control and reads its current value back."""

    spec: ControlSpec
    timeout: float
    effect_after: float

    async def apply(self, context: CallContext) -> str:
        """Make the change; return a short summary of the response. Raise ControlCallError."""
        ...

    async def read(self) -> ControlValue:
        """The value the service reports now. Raise ControlCallError."""
        ...


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


#: Secrets shorter than this are not redacted (they would match ordinary words).
MIN_SECRET = 4
#: A secret's prefixes (and encoded forms) from this length on are redacted too: a body cut
#: short, or a header echoed truncated, must not leak most of a token.
MIN_PREFIX = 8


_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _base64_cores(data: bytes) -> set[str]:
    """The base64 text of `data` wherever it sits in a longer encoded stream.

    At each of the three byte alignments, only the characters made of `data`'s bits alone
    (none of the neighbouring bytes') are kept; in the standard and URL-safe alphabets,
    padded or not (the cores carry no padding).
    """
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii").rstrip("=")
        start = -(-8 * shift // 6)
        end = 8 * (shift + len(data)) // 6
        core = encoded[start:end]
        if len(core) >= MIN_PREFIX:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def secret_forms(secret: str) -> set[str]:
    """The ways `secret` is commonly written: raw, base64, URL-encoded, JSON-escaped."""
    forms = {secret}
    for url_form in (quote(secret, safe=""), quote(secret), quote_plus(secret, safe="")):
        forms.add(url_form)
        forms.add(_PERCENT.sub(lambda m: m.group().lower(), url_form))
    json_ascii = orjson.dumps(secret).decode()[1:-1]
    forms.add(json_ascii)
    forms.add(json_ascii.replace("/", "\\/"))
    forms.add(json.dumps(secret)[1:-1])
    if len(secret) >= MIN_PREFIX:
        forms |= _base64_cores(secret.encode("utf-8", "surrogateescape"))
    return {form for form in forms if len(form) >= MIN_SECRET}


def _redact_prefixes(text: str, form: str) -> str:
    """Redact every run in `text` that is `form`'s first MIN_PREFIX characters or more."""
    head = form[:MIN_PREFIX]
    start = text.find(head)
    while start >= 0:
        end = start + MIN_PREFIX
        while end < len(text) and end - start < len(form) and text[end] == form[end - start]:
            end += 1
        text = text[:start] + REDACTED + text[end:]
        start = text.find(head, start + len(REDACTED))
    return text


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` by `***`, in any common encoding (raw, base64 at any
    alignment, URL-encoded, JSON-escaped) and as a prefix of MIN_PREFIX characters or more.

    Strings shorter than MIN_SECRET are not treated as secrets.
    """
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            forms |= secret_forms(secret)
    ordered = sorted(forms, key=len, reverse=True)
    for form in ordered:
        text = text.replace(form, REDACTED)
    for form in ordered:
        if len(form) >= MIN_PREFIX:
            text = _redact_prefixes(text, form)
    return text


def _where(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def describe_http_error(exc: BaseException, url: str, timeout: float) -> str:
    """One line for a failed HTTP call: refused, timed out, reset..."""
    where = _where(url)
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timed out after {timeout:g}s ({where})"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return f"connection refused ({where})"
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text.lower():
            return f"connection refused ({where})"
        return f"cannot connect to {where}: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed by {where}: {text}"
    return f"{type(exc).__name__} ({where}): {text}"


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    body: bytes
    truncated: bool


async def http_call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    secrets: Iterable[str] = (),
) -> HttpResult:
    """One request with a total deadline and a bounded body; ControlCallError on failure."""
    content = None if json_body is None else orjson.dumps(json_body)
    send_headers = dict(headers or {})
    if content is not None:
        send_headers.setdefault("Content-Type", "application/json")
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                method,
                url,
                headers=send_headers,
                params=_query(params),
                content=content,
                timeout=timeout,
            ) as response:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in response.aiter_bytes():
                    if size < MAX_OUTPUT:
                        chunks.append(chunk[: MAX_OUTPUT - size])
                    else:
                        truncated = True
                    size += len(chunk)
                body = b"".join(chunks)
                return HttpResult(response.status_code, body, truncated or size > MAX_OUTPUT)
    except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as exc:
        raise ControlCallError(redact(describe_http_error(exc, url, timeout), secrets)) from None


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {key: value_arg(value) if value is not None else "" for key, value in params.items()}


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _status_error(result: HttpResult, secrets: Iterable[str]) -> ControlCallError:
    detail = _body_text(result.body)
    try:
        data = orjson.loads(result.body)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(data, dict):
            for key in ("error", "detail", "message"):
                if isinstance(data.get(key), str):
                    detail = data[key]
                    break
    hint = " (check the token)" if result.status in (401, 403) else ""
    text = f"HTTP {result.status}{hint}" + (f": {one_line(detail, 160)}" if detail.strip() else "")
    return ControlCallError(redact(text, secrets))


def _decode_json(result: HttpResult, secrets: Iterable[str]) -> Any:
    try:
        return orjson.loads(result.body)
    except orjson.JSONDecodeError:
        preview = one_line(_body_text(result.body), 60)
        raise ControlCallError(redact(f"read-back is not JSON: {preview!r}", secrets)) from None


def _parse_read(spec: ControlSpec, raw: Any, secrets: Iterable[str]) -> ControlValue:
    try:
        return parse_value(spec, raw)
    except ValueError as exc:
        raise ControlCallError(redact(f"read-back: {exc}", secrets)) from None


def _resolve_headers(
    headers: Mapping[str, str], env: Mapping[str, str] | None
) -> tuple[dict[str, str], list[str]]:
    resolved: dict[str, str] = {}
    secrets: list[str] = []
    for name, text in headers.items():
        try:
            value, used = substitute_env(text, env)
        except MissingEnvError as exc:
            raise ControlCallError(f"header {name}: {exc}") from None
        resolved[name] = value
        secrets.extend(used)
    return resolved, secrets


class HttpApplier:
    """A `[[controls]]` entry applied with an HTTP request and read back with `GET`."""

    def __init__(
        self,
        config: ControlConfig,
        client: httpx.AsyncClient,
        env: Mapping[str, str] | None = None,
    ) -> None:
        assert isinstance(config.apply, HttpApply)
        self.config = config
        self.spec = config.spec()
        self.timeout = config.timeout
        self.effect_after = config.effect_after
        self._apply = config.apply
        self._client = client
        self._env = env

    async def apply(self, context: CallContext) -> str:
        template = [self._apply.body, self._apply.params]
        context = await _with_from_value(self, template, context)
        headers, secrets = _resolve_headers(self._apply.headers, self._env)
        values = _template_values(self.spec, context)
        result = await http_call(
            self._client,
            self._apply.method,
            self._apply.url,
            timeout=self.timeout,
            headers=headers,
            params=resolve_template(self._apply.params, values),
            json_body=resolve_template(self._apply.body, values),
            secrets=secrets,
        )
        ok = (
            result.status in self._apply.expect_status
            if self._apply.expect_status
            else 200 <= result.status < 300
        )
        if not ok:
            raise _status_error(result, secrets)
        return redact(_summary(f"HTTP {result.status}", _body_text(result.body)), secrets)

    async def read(self) -> ControlValue:
        return await read_http(self.spec, self.config.read, self._client, self.timeout, self._env)


async def read_http(
    spec: ControlSpec,
    read: Any,
    client: httpx.AsyncClient,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> ControlValue:
    """Read a value with `GET url` and a dotted JSON field; used by HTTP-applied controls."""
    if isinstance(read, ArgvRead):
        return await read_argv(spec, read, timeout)
    assert isinstance(read, HttpRead)
    headers, secrets = _resolve_headers(read.headers, env)
    result = await http_call(
        client, "GET", read.url, timeout=timeout, headers=headers, secrets=secrets
    )
    if not 200 <= result.status < 300:
        error = _status_error(result, secrets)
        raise ControlCallError(f"read-back {error.message}")
    try:
        raw = json_field(_decode_json(result, secrets), read.field)
    except KeyError as exc:
        raise ControlCallError(f"read-back: {exc.args[0]}") from None
    return _parse_read(spec, raw, secrets)


def _template_values(spec: ControlSpec, context: CallContext) -> dict[str, Any]:
    return {
        "value": wire_value(context.value),
        "reason": context.reason,
        "actor": context.actor,
        "service": spec.service,
        "control": spec.control,
        "request_id": context.request_id,
        "from_value": wire_value(context.from_value) if context.from_value is not None else None,
    }


def _uses_from_value(template: Any) -> bool:
    return "{from_value}" in orjson.dumps(template).decode()


async def _with_from_value(applier: Applier, template: Any, context: CallContext) -> CallContext:
    """`context` with `from_value` read back first when the template compares and sets."""
    if context.from_value is not None or not _uses_from_value(template):
        return context
    return replace(context, from_value=await applier.read())


def _summary(head: str, text: str) -> str:
    body = one_line(text, MAX_SUMMARY)
    return f"{head}: {body}" if body else head


# -- argv ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


async def _read_capped(stream: asyncio.StreamReader | None) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < MAX_OUTPUT:
            kept += chunk[: MAX_OUTPUT - len(kept)]
    return bytes(kept)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if not kill_group(process.pid):
        try:
            process.kill()
        except ProcessLookupError:
            pass


async def run_argv(argv: list[str], timeout: float) -> CommandResult:
    """Run a program without a shell, with a deadline that kills its whole process group."""
    program = argv[0]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ControlCallError(f"command not found: {program}") from None
    except PermissionError:
        raise ControlCallError(f"not allowed to run {program}") from None
    except OSError as exc:
        raise ControlCallError(f"cannot run {program}: {exc.strerror or exc}") from None
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await asyncio.gather(
                _read_capped(process.stdout), _read_capped(process.stderr)
            )
            code = await process.wait()
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        raise ControlCallError(f"timed out after {timeout:g}s ({Path(program).name})") from None
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    return CommandResult(
        code, stdout.decode("utf-8", errors="replace"), stderr.decode("utf-8", errors="replace")
    )


def _command_error(program: str, result: CommandResult) -> ControlCallError:
    detail = one_line(result.stderr or result.stdout, 160)
    name = Path(program).name
    return ControlCallError(f"{name} exited {result.exit_code}" + (f": {detail}" if detail else ""))


async def read_argv(spec: ControlSpec, read: ArgvRead, timeout: float) -> ControlValue:
    result = await run_argv(list(read.argv), timeout)
    if result.exit_code != 0:
        raise ControlCallError(f"read-back {_command_error(read.argv[0], result).message}")
    return _parse_read(spec, result.stdout.strip(), ())


class ArgvApplier:
    """A `[[controls]]` entry applied by running a program; `{value}` is one argv element."""

    def __init__(self, config: ControlConfig, client: httpx.AsyncClient | None = None) -> None:
        assert isinstance(config.apply, ArgvApply)
        self.config = config
        self.spec = config.spec()
        self.timeout = config.timeout
        self.effect_after = config.effect_after
        self._apply = config.apply
        self._client = client

    def argv_for(self, context: CallContext) -> list[str]:
        """The exact argv run for `context` (each placeholder becomes one whole element)."""
        values = {
            key: value_arg(item if item is not None else context.value)
            for key, item in _template_values(self.spec, context).items()
        }
        if context.from_value is not None:
            values["from_value"] = value_arg(context.from_value)
        return [str(part) for part in resolve_template(list(self._apply.argv), values)]

    async def apply(self, context: CallContext) -> str:
        context = await _with_from_value(self, self._apply.argv, context)
        argv = self.argv_for(context)
        result = await run_argv(argv, self.timeout)
        if result.exit_code != 0:
            raise _command_error(argv[0], result)
        return _summary("exit 0", result.stdout)

    async def read(self) -> ControlValue:
        read = self.config.read
        if isinstance(read, ArgvRead):
            return await read_argv(self.spec, read, self.timeout)
        if self._client is None:
            raise ControlCallError("an HTTP read-back needs an HTTP client")
        return await read_http(self.spec, read, self._client, self.timeout)


def appliers_from_config(
    configs: Iterable[ControlConfig],
    client: httpx.AsyncClient,
    env: Mapping[str, str] | None = None,
) -> list[Applier]:
    """One applier per `[[controls]]` entry."""
    out: list[Applier] = []
    for config in configs:
        if isinstance(config.apply, HttpApply):
            out.append(HttpApplier(config, client, env))
        elif isinstance(config.apply, SilenceApply):
            out.append(SilenceApplier(config, client))
        else:
            out.append(ArgvApplier(config, client))
    return out


# -- Alertmanager silences ------------------------------------------------------------------


class SilenceApplier:
    """A silence lever: on = an active Alertmanager silence with the lever's matchers.

    On creates one (comment = the reason, createdBy = the actor, endsAt = the auto-revert
    time or now + `duration`), or extends the one already there; off expires every active
    silence with exactly these matchers. The value is read back from Alertmanager's API.
    """

    def __init__(self, config: ControlConfig, client: httpx.AsyncClient) -> None:
        assert isinstance(config.apply, SilenceApply)
        self.config = config
        self.spec = config.spec()
        self.timeout = config.timeout
        self.effect_after = config.effect_after
        self._apply = config.apply
        self._client = client
        self.matchers = silences.matchers_from(config.apply.matchers)

    @property
    def alertmanager(self) -> str:
        return self._apply.alertmanager

    async def current(self) -> list[silences.Silence]:
        """The active silences this lever owns."""
        try:
            return await silences.active_silences(
                self._client, self.alertmanager, self.matchers, self.timeout
            )
        except silences.SilenceError as exc:
            raise ControlCallError(str(exc)) from None

    async def apply(self, context: CallContext) -> str:
        on = parse_value(self.spec, context.value)
        existing = await self.current()
        try:
            if not on:
                for silence in existing:
                    await silences.expire_silence(
                        self._client, self.alertmanager, silence.id, self.timeout
                    )
                return f"expired {len(existing)} silence{'s' if len(existing) != 1 else ''}"
            ends_at = context.ends_at or datetime.now(UTC) + timedelta(seconds=self._apply.duration)
            silence_id = await silences.put_silence(
                self._client,
                self.alertmanager,
                self.matchers,
                ends_at,
                created_by=context.actor,
                comment=context.reason,
                starts_at=existing[0].starts_at if existing else "",
                silence_id=existing[0].id if existing else "",
                timeout=self.timeout,
            )
        except silences.SilenceError as exc:
            raise ControlCallError(str(exc)) from None
        verb = "extended" if existing else "created"
        return f"silence {silence_id} {verb} until {format_ts(ends_at)}"

    async def extend(self, until: datetime, reason: str = "", actor: str = "") -> str:
        """Push back the end of the lever's silence (what "extend" on the panel does)."""
        existing = await self.current()
        if not existing:
            raise ControlCallError("no active silence to extend")
        return await self.apply(
            CallContext(
                True, reason or existing[0].comment, actor or existing[0].created_by, ends_at=until
            )
        )

    async def read(self) -> ControlValue:
        return bool(await self.current())


# -- the simulated fleet ------------------------------------------------------------------


def read_token(token_path: str | Path) -> str:
    """The admin token from its file (read on every call, so a restarted sim is picked up)."""
    path = Path(token_path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ControlCallError(f"token file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ControlCallError(f"token file {path}: cannot read ({type(exc).__name__})") from None
    if not token:
        raise ControlCallError(f"token file {path} is empty")
    if not (token.isascii() and token.isprintable()):
        # An HTTP header cannot carry it: say so here rather than fail inside httpx.
        raise ControlCallError(f"token file {path}: not a token (non-ASCII or control characters)")
    return token


class SimApplier:
    """A control of the simulated fleet, changed through its token-protected admin API."""

    def __init__(
        self,
        spec: ControlSpec,
        admin_url: str,
        token_path: str | Path,
        client: httpx.AsyncClient,
        timeout: float = DEFAULT_TIMEOUT_S,
        effect_after: float = DEFAULT_EFFECT_AFTER_S,
    ) -> None:
        self.spec = spec
        self.timeout = timeout
        self.effect_after = effect_after
        self._base = admin_url.rstrip("/")
        self._token_path = token_path
        self._client = client

    @property
    def url(self) -> str:
        service = quote(self.spec.service, safe="")
        control = quote(self.spec.control, safe="")
        return f"{self._base}/controls/{service}/{control}"

    def _auth(self) -> tuple[dict[str, str], list[str]]:
        token = read_token(self._token_path)
        return {"Authorization": f"Bearer {token}"}, [token]

    async def apply(self, context: CallContext) -> str:
        headers, secrets = self._auth()
        result = await http_call(
            self._client,
            "POST",
            self.url,
            timeout=self.timeout,
            headers=headers,
            json_body={"value": wire_value(context.value), "reason": context.reason},
            secrets=secrets,
        )
        if result.status != 200:
            raise _status_error(result, secrets)
        return redact(f"HTTP {result.status}", secrets)

    async def read(self) -> ControlValue:
        headers, secrets = self._auth()
        result = await http_call(
            self._client, "GET", self.url, timeout=self.timeout, headers=headers, secrets=secrets
        )
        if result.status != 200:
            raise ControlCallError(f"read-back {_status_error(result, secrets).message}")
        try:
            raw = json_field(_decode_json(result, secrets), "value")
        except KeyError as exc:
            raise ControlCallError(f"read-back: {exc.args[0]}") from None
        return _parse_read(self.spec, raw, secrets)


@dataclass(frozen=True, slots=True)
class SimControls:
    """The simulated fleet's controls with the values it reported when they were listed."""

    appliers: list[Applier]
    values: dict[str, ControlValue | None]


async def load_sim_controls(
    admin_url: str,
    token_path: str | Path,
    client: httpx.AsyncClient,
    timeout: float = DEFAULT_TIMEOUT_S,
    effect_after: float = DEFAULT_EFFECT_AFTER_S,
) -> SimControls:
    """`GET /controls` of a simulated fleet: one applier per control, plus current values."""
    url = admin_url.rstrip("/") + "/controls"
    try:
        token = read_token(token_path)
    except ControlCallError:
        token = ""  # listing may work without it; changes will then say why they fail
    token_headers = {"Authorization": f"Bearer {token}"} if token else {}
    secrets = [token] if token else []
    try:
        result = await http_call(
            client, "GET", url, timeout=timeout, headers=token_headers, secrets=secrets
        )
    except ControlCallError as exc:
        raise ControlError(f"{url}: {exc.message}") from None
    if result.status != 200:
        raise ControlError(f"{url}: {_status_error(result, secrets).message}")
    try:
        data = orjson.loads(result.body)
        entries = data["controls"]
        if not isinstance(entries, list):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ControlError(f"{url}: expected a JSON object with a 'controls' list") from None
    appliers: list[Applier] = []
    values: dict[str, ControlValue | None] = {}
    for index, entry in enumerate(entries):
        try:
            spec = ControlSpec.model_validate(entry)
        except ValueError as exc:
            raise ControlError(f"{url}: controls[{index}]: {one_line(str(exc), 160)}") from None
        appliers.append(SimApplier(spec, admin_url, token_path, client, timeout, effect_after))
        try:
            values[spec.key] = parse_value(spec, entry.get("value"))
        except ValueError:
            values[spec.key] = None
    return SimControls(appliers, values)
