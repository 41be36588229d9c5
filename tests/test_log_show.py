"""`log show`'s fast path says exactly what the typed events say, and nothing unsafe."""

from __future__ import annotations

import orjson
import pytest
from hostile import PAYLOADS, assert_terminal_safe

from warroom import events as ev
from warroom.log import codec
from warroom.log.show import FAST_SUMMARIES, decode, format_record, summary

ENVELOPE = {"v": 2, "seq": 7, "ts": "2025-10-20T06:48:00.000000Z", "actor": "a", "prev": "0" * 64}

EXAMPLES: list[ev.BaseEvent] = [
    ev.NoteAdded(text="paged the DNS team"),
    ev.NoteAdded(text="two\nlines"),
    ev.ProbeSamples(
        samples=[
            ev.ProbeSample(target="dns", state="up", ok=3, count=3, latency_ms=1.5),
            ev.ProbeSample(target='we"ird],"seq":{"target":', state="down"),
        ]
    ),
    ev.ProbeSamples(samples=[]),
    ev.ProbeStateChanged(target="dns", from_state="up", to_state="down", reason="NXDOMAIN"),
    ev.ProbeStateChanged(target="dns", from_state="down", to_state="up"),
    ev.StepVerified(runbook="rb", step="s1", condition="dns is up", holds=True),
    ev.StepVerified(runbook="rb", step="s1", condition="dns is up", holds=False),
    ev.ScenarioEvent(sim_seq=3, sim_time=12.6, title="fault injected"),
]


def line_of(event: ev.BaseEvent) -> bytes:
    data = {**event.model_dump(mode="json"), **ENVELOPE}
    del data["hash"]
    return codec.encode(data)[0].rstrip(b"\n")


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_fast_summaries_equal_the_typed_ones(event: ev.BaseEvent) -> None:
    assert event.kind in FAST_SUMMARIES
    raw = line_of(event)
    typed = ev.parse_event(orjson.loads(raw)).summary()
    assert summary(orjson.loads(raw)) == typed
    assert summary(decode(raw)) == typed


def test_wrong_field_types_take_the_typed_path_and_name_the_field() -> None:
    valid = {e.kind: e.model_dump(mode="json") for e in EXAMPLES}
    for kind, field, value in [
        ("note_added", "text", 5),
        ("probe_state_changed", "to_state", "sideways"),
        ("probe_samples", "samples", "many"),
        ("scenario_event", "sim_time", "noon"),
        ("step_verified", "holds", "maybe"),
    ]:
        data = {**valid[kind], **ENVELOPE, field: value}
        with pytest.raises(ev.EventError, match=f"{kind}: field '{field}"):
            summary(data)


@pytest.mark.slow
def test_format_record_is_one_safe_line_whatever_the_fields_hold() -> None:
    for payload in PAYLOADS.values():
        for data in (
            {**ENVELOPE, "kind": "note_added", "text": payload, "actor": payload},
            {**ENVELOPE, "kind": "pager_escalated", "ts": payload, "policy": payload},
        ):
            assert_terminal_safe(format_record(data), one_line=True)
            if not any(0xD800 <= ord(c) <= 0xDFFF for c in payload):
                raw = codec.encode({k: v for k, v in data.items() if k != "hash"})[0]
                assert_terminal_safe(format_record(data, raw.rstrip(b"\n")), one_line=True)
    plain = {**ENVELOPE, "kind": "note_added", "text": "ok"}
    assert format_record(plain) == "     7  2025-10-20 06:48:00  a  note: ok"


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "Australia/Eucla", "UTC"])
def test_incident_clock_matches_clock_in_every_zone_and_across_dst(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from datetime import UTC, datetime, timedelta

    from warroom.log.show import incident_clock
    from warroom.timefmt import clock, local_day

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        # Across New York's fall-back (06:00Z on Nov 2) and a local midnight, every 7 minutes.
        start = datetime(2025, 11, 1, 22, 3, 7, 123456, tzinfo=UTC)
        stamps = [
            (start + timedelta(minutes=7 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for i in range(150)
        ]
        stamps.insert(3, "not a time")
        day = local_day(stamps[0])
        fmt = incident_clock()
        assert [fmt(ts) for ts in stamps] == [clock(ts, day) for ts in stamps]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
