"""Alertmanager silences over its v2 API: list, create or extend, expire.

Used by the silence lever (`warroom.controls.client.SilenceApplier`). Every call has a
deadline and a bounded answer; failures are `SilenceError` with one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from warroom.events import format_ts, parse_ts

MAX_ANSWER = 4 * 1024 * 1024


class SilenceError(Exception):
    """A silence call failed; the message is one line."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """`name="value"` (or `=~` with `is_regex`); warroom's silences use equality matchers."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    state: str
    matchers: frozenset[Matcher]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str

    @property
    def active(self) -> bool:
        return self.state == "active"


def matchers_from(labels: Mapping[str, str]) -> frozenset[Matcher]:
    return frozenset(Matcher(name, value) for name, value in labels.items())


async def _call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    timeout: float,
    body: Any = None,
) -> tuple[int, bytes]:
    content = None if body is None else orjson.dumps(body)
    headers = {"Content-Type": "application/json"} if content is not None else {}
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                method, url, content=content, headers=headers, timeout=timeout
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_ANSWER:
                        raise SilenceError(f"{method} {url}: answer over {MAX_ANSWER} bytes")
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
    except TimeoutError:
        raise SilenceError(f"{method} {url}: timed out after {timeout:g}s") from None
    except httpx.HTTPError as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise SilenceError(f"{method} {url}: {text}"[:300]) from None


def _error(method: str, url: str, status: int, body: bytes) -> SilenceError:
    detail = " ".join(body.decode("utf-8", "replace").split())[:160]
    return SilenceError(f"{method} {url}: HTTP {status}" + (f": {detail}" if detail else ""))


def _silence(item: Any) -> Silence:
    if not isinstance(item, dict):
        raise SilenceError("silence is not a JSON object")
    try:
        matchers = frozenset(
            Matcher(
                str(m["name"]),
                str(m["value"]),
                bool(m.get("isRegex", False)),
                bool(m.get("isEqual", True)),
            )
            for m in item.get("matchers") or []
        )
        return Silence(
            id=str(item["id"]),
            state=str((item.get("status") or {}).get("state", "")),
            matchers=matchers,
            starts_at=str(item.get("startsAt", "")),
            ends_at=str(item.get("endsAt", "")),
            created_by=str(item.get("createdBy", "")),
            comment=str(item.get("comment", "")),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise SilenceError(f"malformed silence: missing {exc}") from None


async def list_silences(
    client: httpx.AsyncClient, base_url: str, timeout: float = 5.0
) -> list[Silence]:
    url = f"{base_url.rstrip('/')}/api/v2/silences"
    status, body = await _call(client, "GET", url, timeout)
    if status != 200:
        raise _error("GET", url, status, body)
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SilenceError(f"GET {url}: answer is not JSON") from None
    if not isinstance(items, list):
        raise SilenceError(f"GET {url}: expected a list")
    return [_silence(item) for item in items]


async def active_silences(
    client: httpx.AsyncClient,
    base_url: str,
    matchers: frozenset[Matcher],
    timeout: float = 5.0,
) -> list[Silence]:
    """Active silences with exactly these matchers (what the lever owns)."""
    found = await list_silences(client, base_url, timeout)
    return [s for s in found if s.active and s.matchers == matchers]


async def put_silence(
    client: httpx.AsyncClient,
    base_url: str,
    matchers: Sequence[Matcher] | frozenset[Matcher],
    ends_at: datetime,
    *,
    created_by: str,
    comment: str,
    starts_at: str = "",
    silence_id: str = "",
    timeout: float = 5.0,
) -> str:
    """Create a silence (or, with `silence_id`, extend it); return its id."""
    url = f"{base_url.rstrip('/')}/api/v2/silences"
    body: dict[str, Any] = {
        "matchers": [m.wire() for m in sorted(matchers, key=lambda m: (m.name, m.value))],
        "startsAt": starts_at or format_ts(datetime.now(ends_at.tzinfo)),
        "endsAt": format_ts(ends_at),
        "createdBy": created_by or "warroom",
        "comment": comment or "silenced from warroom",
    }
    if silence_id:
        body["id"] = silence_id
    status, answer = await _call(client, "POST", url, timeout, body)
    if status != 200:
        raise _error("POST", url, status, answer)
    try:
        new_id = orjson.loads(answer)["silenceID"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise SilenceError(f"POST {url}: answer has no silenceID") from None
    return str(new_id)


async def expire_silence(
    client: httpx.AsyncClient, base_url: str, silence_id: str, timeout: float = 5.0
) -> None:
    url = f"{base_url.rstrip('/')}/api/v2/silence/{quote(silence_id, safe='')}"
    status, body = await _call(client, "DELETE", url, timeout)
    if status != 200:
        raise _error("DELETE", url, status, body)


def ends_at_of(silence: Silence) -> datetime:
    return parse_ts(silence.ends_at)


#: Labels an ad-hoc silence of one alert matches on (present ones only).
SILENCE_LABELS: tuple[str, ...] = ("alertname", "service", "instance")


def silence_control_for(
    labels: Mapping[str, str],
    alertmanager: str,
    *,
    service: str = "",
    duration_s: float = 3600.0,
    keep: Sequence[str] = SILENCE_LABELS,
) -> Any:
    """A silence lever (`ControlConfig`) for one alert, for "silence this" in the alerts pane.

    It matches the alert's `keep` labels exactly, so it silences this alert and its repeats,
    not its neighbours; apply it with `warroom.controls.client.SilenceApplier`.
    """
    from warroom.controls.model import ControlConfig

    matchers = {name: labels[name] for name in keep if labels.get(name)}
    if not matchers:
        raise SilenceError("the alert has none of the labels a silence matches on")
    name = "silence_" + "_".join(
        "".join(ch if ch.isalnum() else "-" for ch in matchers[k])[:40] for k in sorted(matchers)
    )
    return ControlConfig.model_validate(
        {
            "service": service or labels.get("service") or "alerts",
            "control": name[:200],
            "label": "Silence " + ", ".join(f"{k}={v}" for k, v in sorted(matchers.items())),
            "kind": "toggle",
            "apply": {"alertmanager": alertmanager, "matchers": matchers, "duration": duration_s},
            "read": {"alertmanager": alertmanager},
        }
    )
