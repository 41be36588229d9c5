"""Alert intake: payload parsing, the alert book, the reducer, and the webhook receiver."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import orjson
import pytest

from warroom import events as ev
from warroom.alerts.model import (
    MAX_PAIRS,
    MAX_TEXT,
    AlertBook,
    PayloadError,
    parse_api_alerts,
    parse_webhook,
    service_of,
)
from warroom.alerts.receiver import WebhookReceiver
from warroom.state import active_alerts, alerting_services, firing_alert_count, fold

TOKEN = "s3cret-token-for-tests-only"


def webhook(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return orjson.dumps(
        {"version": "4", "receiver": "warroom", "status": status, "alerts": list(alerts)}
    )


def alert(
    status: str = "firing",
    fingerprint: str = "abc123",
    name: str = "ServiceDown",
    service: str = "cache",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "service": service, "severity": "page"},
        "annotations": {"summary": f"{service} refuses connections"},
        "startsAt": "2026-12-01T09:15:14.971123456Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
        **extra,
    }


def api_alert(state: str = "active", silenced_by: tuple[str, ...] = (), **kw: Any) -> dict:
    body = alert(**kw)
    body.pop("status")
    body["status"] = {"state": state, "silencedBy": list(silenced_by), "inhibitedBy": []}
    return body


# -- parsing -------------------------------------------------------------------------------


def test_webhook_payload_is_parsed_with_go_times() -> None:
    payload = parse_webhook(webhook(alert()))
    (one,) = payload.alerts
    assert one.starts_at == "2026-12-01T09:15:14.971123Z"  # nanoseconds cut to µs
    assert one.ends_at == ""  # Alertmanager's zero time is "no end"
    assert one.labels["alertname"] == "ServiceDown"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "not JSON"),
        (b"[]", "expected a JSON object, got list"),
        (b'{"alerts": 3}', "alerts"),
        (webhook(alert(status="weird")), "alerts.0.status"),
        (webhook(alert(startsAt="yesterday")), "not an RFC 3339 time"),
        (webhook({**alert(), "labels": {"a": 1}}), "expected an object of strings"),
    ],
)
def test_malformed_webhooks_are_one_line_errors(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_webhook(body)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_hostile_sizes_are_bounded() -> None:
    labels = {f"l{i}": "x" * (MAX_TEXT * 2) for i in range(MAX_PAIRS * 2)}
    payload = parse_webhook(webhook({**alert(), "labels": labels}))
    kept = payload.alerts[0].labels
    assert len(kept) == MAX_PAIRS and all(len(v) == MAX_TEXT for v in kept.values())


def test_service_is_matched_by_label_preferring_known_services() -> None:
    labels = {"job": "node", "service": "checkout"}
    assert service_of(labels) == "checkout"
    assert service_of({"job": "db"}) == "db"
    assert service_of({"app": "web", "job": "cache"}, known={"cache"}) == "cache"
    assert service_of({"alertname": "X"}) == ""


# -- the book ------------------------------------------------------------------------------


def test_repeats_are_not_news_but_changes_are() -> None:
    book = AlertBook()
    first = book.from_webhook(parse_webhook(webhook(alert())))
    assert [(e.status, e.service, e.source) for e in first] == [("firing", "cache", "webhook")]
    assert book.from_webhook(parse_webhook(webhook(alert()))) == []  # repeat_interval
    assert book.from_api(parse_api_alerts(orjson.dumps([api_alert()]))) == []  # same news
    resolved = book.from_webhook(parse_webhook(webhook(alert("resolved"), status="resolved")))
    assert [e.status for e in resolved] == ["resolved"]


def test_a_silenced_alert_is_resolved_by_the_api_only() -> None:
    book = AlertBook()
    book.from_webhook(parse_webhook(webhook(alert())))
    silenced = book.from_api(parse_api_alerts(orjson.dumps([api_alert("suppressed", ("s1",))])))
    assert [(e.status, e.silenced_by) for e in silenced] == [("suppressed", ["s1"])]
    # A late repeat of the old firing webhook does not un-silence it.
    assert book.from_webhook(parse_webhook(webhook(alert()))) == []
    gone = book.from_api([])
    assert [(e.status, e.source, e.alertname, e.service) for e in gone] == [
        ("resolved", "api", "ServiceDown", "cache")
    ]
    assert gone[0].ends_at
    assert book.from_api([]) == []


def test_a_poll_sent_before_a_webhook_cannot_resolve_it() -> None:
    book = AlertBook()
    asked_at = time.monotonic()
    book.from_webhook(parse_webhook(webhook(alert())))
    assert book.from_api([], asked_at=asked_at) == []
    assert [e.status for e in book.from_api([], asked_at=time.monotonic())] == ["resolved"]


def test_the_book_starts_from_what_the_log_says() -> None:
    events = AlertBook().from_webhook(parse_webhook(webhook(alert())))
    book = AlertBook()
    book.seed(fold(events).alerts)
    assert book.from_webhook(parse_webhook(webhook(alert()))) == []
    assert [e.alertname for e in book.from_api([])] == ["ServiceDown"]


# -- the reducer ---------------------------------------------------------------------------


def _stamped(events: list[ev.AlertObserved], start: int = 0) -> list[ev.BaseEvent]:
    return [
        e.model_copy(update={"seq": i + 1, "ts": f"2026-12-01T09:16:{i + start:02d}.000000Z"})
        for i, e in enumerate(events)
    ]


def test_reducer_keeps_alerts_counts_firing_and_detects_with_the_first() -> None:
    book = AlertBook()
    raw = [
        *book.from_webhook(parse_webhook(webhook(alert(), alert(fingerprint="f2", name="Slow")))),
        *book.from_api(
            parse_api_alerts(
                orjson.dumps(
                    [api_alert(), api_alert("suppressed", ("s",), fingerprint="f2", name="Slow")]
                )
            )
        ),
    ]
    state = fold(_stamped(raw))
    assert state.timings.first_detection == "2026-12-01T09:16:00.000000Z"
    assert state.timings.impact_start == "2026-12-01T09:15:14.971123Z"  # the alert's startsAt
    assert firing_alert_count(state) == 1
    assert [(a.alertname, a.status) for a in active_alerts(state)] == [
        ("ServiceDown", "firing"),
        ("Slow", "suppressed"),
    ]
    assert alerting_services(state) == {"cache": ["ServiceDown"]}
    view = state.alerts["abc123"]
    assert view.first_seen == "2026-12-01T09:16:00.000000Z"
    assert view.generator_url.startswith("http://127.0.0.1:9090/")
    later = fold(_stamped(book.from_api([]), start=10), state)
    assert firing_alert_count(later) == 0 and active_alerts(later) == []
    assert later.alerts["abc123"].since == "2026-12-01T09:16:10.000000Z"
    assert later.alerts["abc123"].first_seen == view.first_seen
    summary = raw[0].summary()
    assert summary == "alert ServiceDown firing (cache): cache refuses connections"


def test_alert_events_round_trip_through_the_log_format() -> None:
    (event,) = AlertBook().from_webhook(parse_webhook(webhook(alert())))
    again = ev.parse_event(orjson.loads(orjson.dumps(event.model_dump(mode="json"))))
    assert again == event and isinstance(again, ev.AlertObserved)
    assert not ev.is_operator_action(event)


# -- the receiver, over loopback -------------------------------------------------------------


@pytest.fixture
async def receiver() -> Any:
    payloads: list[Any] = []
    server = WebhookReceiver(TOKEN, payloads.append, max_body=64 * 1024)
    await server.start()
    server.payloads = payloads  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        await server.stop()


async def _post(url: str, body: bytes, token: str | None = TOKEN, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, **kw) as response,
    ):
        return response.status, await response.json()


async def test_receiver_accepts_alertmanagers_webhook(receiver: Any) -> None:
    status, answer = await _post(receiver.url, webhook(alert()))
    assert (status, answer) == (200, {"accepted": 1})
    assert receiver.payloads[0].alerts[0].fingerprint == "abc123"
    assert receiver.url.startswith("http://127.0.0.1:")


async def test_receiver_rejects_with_a_logged_reason_and_keeps_serving(
    receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    huge = webhook(alert(), alert(fingerprint="x" * 10, generatorURL="y" * 2000)) * 100

    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 4096

    cases = [
        (await _post(receiver.url, webhook(alert()), token="wrong"), 401, "wrong token"),
        (await _post(receiver.url, webhook(alert()), token=None), 401, "no Authorization"),
        (await _post(receiver.url, b'{"alerts": [1'), 400, "not JSON"),
        (await _post(receiver.url, b'{"version": "4"}'), 400, "alerts: Field required"),
        (await _post(receiver.url, huge), 413, "body over 65536 bytes"),
        (await _post(receiver.url, chunks()), 413, "body over 65536 bytes"),  # no length
    ]
    for (status, answer), wanted, reason in cases:
        assert status == wanted and reason in answer["error"], (status, answer)
    async with aiohttp.ClientSession() as session, session.get(receiver.url) as response:
        assert response.status == 405
    with caplog.at_level(logging.WARNING, logger="warroom.alerts"):
        await _post(receiver.url, webhook(alert()), token="wrong")
    assert "rejected (401): wrong token" in caplog.text and "127.0.0.1" in caplog.text
    assert receiver.rejected == 8 and receiver.payloads == []
    assert [r.status for r in list(receiver.rejections)[:3]] == [401, 401, 400]
    assert (await _post(receiver.url, webhook(alert())))[0] == 200  # still serving


async def test_a_failing_sink_is_a_500_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    def broken(payload: Any) -> None:
        raise OSError("disk full")

    server = WebhookReceiver(TOKEN, broken)
    await server.start()
    try:
        status, answer = await _post(server.url, webhook(alert()))
        assert (status, answer) == (500, {"error": "internal error"})
        assert "handling the payload failed" in caplog.text
    finally:
        await server.stop()


def test_the_report_detects_with_the_first_alert_and_lists_it() -> None:
    from warroom.report.builder import build_report

    (page,) = AlertBook().from_webhook(parse_webhook(webhook(alert())))
    opened = ev.IncidentOpened(
        seq=1, ts="2026-12-01T09:15:00.000000Z", incident_id="i", title="cache down"
    )
    report = build_report(
        [opened, page.model_copy(update={"seq": 2, "ts": "2026-12-01T09:16:00.000000Z"})]
    )
    assert report.times.first_detection == "2026-12-01T09:16:00.000000Z"
    assert report.times.impact_start == "2026-12-01T09:15:14.971123Z"  # the alert's startsAt
    assert round(report.times.time_to_detect_s or 0, 1) == 45.0
    assert [t.text for t in report.timeline if t.kind == "alert_observed"] == [
        "alert ServiceDown firing (cache): cache refuses connections"
    ]


def test_a_silence_lever_for_one_alert_matches_its_identity() -> None:
    from warroom.alerts.silences import SilenceError, silence_control_for

    labels = {"alertname": "ServiceDown", "service": "cache", "instance": "127.0.0.1:81", "x": "y"}
    control = silence_control_for(labels, "http://127.0.0.1:9093", duration_s=600)
    assert (control.service, control.kind, control.apply.duration) == ("cache", "toggle", 600)
    assert control.apply.matchers == {
        "alertname": "ServiceDown",
        "service": "cache",
        "instance": "127.0.0.1:81",
    }
    assert control.control == "silence_ServiceDown_127-0-0-1-81_cache"
    with pytest.raises(SilenceError):
        silence_control_for({"severity": "page"}, "http://127.0.0.1:9093")


async def test_a_taken_address_is_one_plain_line() -> None:
    """Two intakes on one address (a console beside `alerts serve`): the second says what the
    OS said, not asyncio's wrapper around it."""
    from warroom.alerts.intake import AlertIntake
    from warroom.config import AlertsSettings
    from warroom.errors import WarroomError

    first = WebhookReceiver(TOKEN, lambda payload: None)
    await first.start()
    try:
        listen = f"127.0.0.1:{first.port}"
        second = AlertIntake(AlertsSettings(listen=listen, token=TOKEN), lambda events: None)
        with pytest.raises(WarroomError) as caught:
            await second.start()
        assert str(caught.value) == (
            f"alerts.listen: cannot listen on {listen}: Address already in use"
        )
    finally:
        await first.stop()
