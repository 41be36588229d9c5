"""Alertmanager's alert shapes and the pure logic that turns them into `AlertObserved` events.

Webhook payloads (version 4) and `/api/v2/alerts` answers are untrusted input: they are
validated with pydantic, bounded (alerts per payload, labels per alert, text per value), and
every problem becomes one line naming what is wrong. `AlertBook` remembers the last status of
each fingerprint so that Alertmanager's repeats (`repeat_interval`, every poll) do not become
events, while a change (fired, silenced, resolved) always does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warroom.events import AlertObserved, AlertStatus, format_ts, parse_ts, utc_now

#: Alerts kept from one payload or poll; the rest are dropped (and counted).
MAX_ALERTS = 2000
#: Labels / annotations kept per alert, and characters kept per value.
MAX_PAIRS = 64
MAX_TEXT = 2048
#: Label names tried, in order, to find the service an alert is about.
DEFAULT_SERVICE_LABELS: tuple[str, ...] = ("service", "app", "job")
#: Alertmanager's "no time" (a firing alert's endsAt in webhooks, often).
_ZERO_TIME = "0001-01-01T00:00:00Z"


class PayloadError(ValueError):
    """A webhook body or API answer that is not what Alertmanager sends; one line."""


def _bounded_pairs(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError("expected an object of strings")
    out: dict[str, str] = {}
    for key, item in list(value.items())[:MAX_PAIRS]:
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValueError("expected an object of strings")
        out[key[:MAX_TEXT]] = item[:MAX_TEXT]
    return out


def _time_text(value: Any) -> str:
    """RFC 3339 UTC (µs) for a valid time, "" for none or Alertmanager's zero time."""
    if value is None or value == "" or value == _ZERO_TIME:
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("expected an RFC 3339 time")
    try:
        parsed = parse_ts(value)
    except ValueError:
        # Go writes nanoseconds; Python's parser takes at most microseconds.
        head, dot, rest = value.partition(".")
        if not dot:
            raise ValueError(f"not an RFC 3339 time: {value[:40]!r}") from None
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        try:
            parsed = parse_ts(f"{head}.{digits[:6]}{zone}")
        except ValueError:
            raise ValueError(f"not an RFC 3339 time: {value[:40]!r}") from None
    if parsed.year < 1000:
        return ""
    return format_ts(parsed)


class _Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(default="", alias="startsAt")
    ends_at: str = Field(default="", alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=MAX_TEXT)
    fingerprint: str = Field(default="", max_length=128)

    @field_validator("labels", "annotations", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> dict[str, str]:
        return _bounded_pairs(value)

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _times(cls, value: Any) -> str:
        return _time_text(value)

    @field_validator("generator_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        return "" if value is None else value


class WebhookAlert(_Alert):
    """One alert of a webhook notification."""

    status: Literal["firing", "resolved"]


class WebhookPayload(BaseModel):
    """Alertmanager's webhook body (`version: "4"`)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    version: str = "4"
    receiver: str = Field(default="", max_length=MAX_TEXT)
    status: Literal["firing", "resolved"] = "firing"
    alerts: list[WebhookAlert]
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")

    @field_validator("alerts", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > MAX_ALERTS:
            return value[:MAX_ALERTS]
        return value


class ApiAlertStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    state: Literal["active", "suppressed", "unprocessed"] = "active"
    silenced_by: list[str] = Field(default_factory=list, alias="silencedBy")
    inhibited_by: list[str] = Field(default_factory=list, alias="inhibitedBy")


class ApiAlert(_Alert):
    """One alert of `GET /api/v2/alerts`."""

    status: ApiAlertStatus = Field(default_factory=ApiAlertStatus)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {message}{more}"


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"not JSON: {str(exc).splitlines()[0][:120]}") from None


def parse_webhook(body: bytes) -> WebhookPayload:
    """Validate a webhook body; `PayloadError` (one line) if it is not Alertmanager's shape."""
    data = _decode(body)
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(_first_error(exc)) from None


def parse_api_alerts(body: bytes) -> list[ApiAlert]:
    """Validate a `/api/v2/alerts` answer (a JSON list); `PayloadError` if it is not one."""
    data = _decode(body)
    if not isinstance(data, list):
        raise PayloadError(f"expected a JSON list of alerts, got {type(data).__name__}")
    alerts: list[ApiAlert] = []
    for index, item in enumerate(data[:MAX_ALERTS]):
        try:
            alerts.append(ApiAlert.model_validate(item))
        except ValidationError as exc:
            raise PayloadError(f"[{index}].{_first_error(exc)}") from None
    return alerts


def fingerprint_of(alert: _Alert) -> str:
    """Alertmanager's fingerprint, or (when a sender left it out) one from the sorted labels."""
    if alert.fingerprint:
        return alert.fingerprint
    canonical = orjson.dumps(alert.labels, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def service_of(
    labels: Mapping[str, str],
    service_labels: Sequence[str] = DEFAULT_SERVICE_LABELS,
    known: Iterable[str] = (),
) -> str:
    """The service an alert is about: the first `service_labels` label present.

    With `known` services given, a label value naming one of them wins over earlier labels
    that do not (a `job` of "node" must not hide `service="checkout"` further down).
    """
    known_set = set(known)
    values = [labels[name] for name in service_labels if labels.get(name)]
    if known_set:
        for value in values:
            if value in known_set:
                return value
    return values[0] if values else ""


@dataclass(frozen=True, slots=True)
class _Seen:
    status: str
    silenced_by: tuple[str, ...]


class AlertBook:
    """The last known status of every alert: turns observations into events only on change."""

    def __init__(
        self,
        service_labels: Sequence[str] = DEFAULT_SERVICE_LABELS,
        known_services: Iterable[str] = (),
    ) -> None:
        self.service_labels = tuple(service_labels)
        self.known_services = frozenset(known_services)
        self._seen: dict[str, _Seen] = {}
        # A resolve learnt from the API has no labels (the alert is gone): keep the last ones.
        self._identity: dict[str, dict[str, Any]] = {}
        # When each alert last changed (monotonic), so that a poll asked before a webhook
        # arrived cannot resolve the alert that webhook just reported.
        self._changed_at: dict[str, float] = {}

    def seed(self, alerts: Mapping[str, Any]) -> None:
        """Start from what a log already says (values with `.status` and `.silenced_by`)."""
        for fingerprint, view in alerts.items():
            self._seen[fingerprint] = _Seen(view.status, tuple(view.silenced_by))
            self._identity[fingerprint] = _identity(view)

    def active(self) -> set[str]:
        """Fingerprints not resolved."""
        resolved = AlertStatus.RESOLVED.value
        return {fp for fp, seen in self._seen.items() if seen.status != resolved}

    def status(self, fingerprint: str) -> str | None:
        seen = self._seen.get(fingerprint)
        return seen.status if seen else None

    def _event(
        self,
        alert: _Alert,
        status: AlertStatus,
        source: Literal["webhook", "api"],
        silenced_by: Sequence[str] = (),
    ) -> AlertObserved | None:
        fingerprint = fingerprint_of(alert)
        seen = _Seen(status.value, tuple(silenced_by))
        if self._seen.get(fingerprint) == seen:
            return None
        self._seen[fingerprint] = seen
        self._changed_at[fingerprint] = time.monotonic()
        event = AlertObserved(
            fingerprint=fingerprint,
            alertname=alert.labels.get("alertname", ""),
            status=status,
            service=service_of(alert.labels, self.service_labels, self.known_services),
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            generator_url=alert.generator_url,
            silenced_by=list(silenced_by),
            source=source,
        )
        self._identity[fingerprint] = _identity(event)
        return event

    def from_webhook(self, payload: WebhookPayload) -> list[AlertObserved]:
        """Events for a webhook's alerts that are news."""
        out: list[AlertObserved] = []
        for alert in payload.alerts:
            status = AlertStatus(alert.status)
            if status == AlertStatus.FIRING and self.status(fingerprint_of(alert)) == (
                AlertStatus.SUPPRESSED.value
            ):
                # A webhook never carries silences; the API poll said this one is silenced.
                continue
            event = self._event(alert, status, "webhook")
            if event is not None:
                out.append(event)
        return out

    def from_api(
        self, alerts: Sequence[ApiAlert], asked_at: float | None = None
    ) -> list[AlertObserved]:
        """Events that set the book right from a full `/api/v2/alerts` answer.

        Alerts the API no longer lists are resolved: that is the only way to learn that a
        silenced alert ended, since Alertmanager sends no webhook for it. `asked_at`
        (`time.monotonic()` when the request was sent) keeps alerts that changed since.
        """
        out: list[AlertObserved] = []
        listed: set[str] = set()
        for alert in alerts:
            fingerprint = fingerprint_of(alert)
            listed.add(fingerprint)
            if alert.ends_at and parse_ts(alert.ends_at) < _now():
                continue  # resolved but not yet garbage-collected by Alertmanager
            if alert.status.state == "suppressed":
                blockers = [*alert.status.silenced_by, *alert.status.inhibited_by]
                event = self._event(alert, AlertStatus.SUPPRESSED, "api", blockers)
            else:
                event = self._event(alert, AlertStatus.FIRING, "api")
            if event is not None:
                out.append(event)
        for fingerprint in sorted(self.active() - listed):
            if asked_at is not None and self._changed_at.get(fingerprint, 0.0) > asked_at:
                continue
            self._seen[fingerprint] = _Seen(AlertStatus.RESOLVED.value, ())
            out.append(
                AlertObserved(
                    fingerprint=fingerprint,
                    status=AlertStatus.RESOLVED,
                    ends_at=format_ts(_now()),
                    source="api",
                    **self._identity.get(fingerprint, {}),
                )
            )
        return out


def _identity(alert: Any) -> dict[str, Any]:
    return {
        "alertname": alert.alertname,
        "service": alert.service,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": alert.starts_at,
        "generator_url": alert.generator_url,
    }


def _now() -> datetime:
    return utc_now()
