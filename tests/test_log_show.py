"""`log show`'s fast path says exactly what the typed events say, and nothing unsafe."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hostile import PAYLOADS, assert_terminal_safe, utf8

from warroom import events as ev
from warroom.log import codec
from warroom.log.show import _ODD_VALUE as ODD_VALUE
from warroom.log.show import (
    SUMMARIES,
    Shower,
    decode,
    format_record,
    incident_clock,
    reference_line,
    summary,
)
from warroom.log.store import IncidentLog
from warroom.timefmt import clock, local_day

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
    assert event.kind in SUMMARIES
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


def every_kind() -> list[ev.BaseEvent]:
    """One valid event of every kind the models know, with every optional field set."""
    sample = ev.ProbeSample(target="dns", state="down", ok=1, count=3, latency_ms=9.5)
    return [
        ev.IncidentOpened(incident_id="inc-1", title="DNS down", severity="SEV1"),
        ev.IncidentClosed(summary_text="all clear"),
        ev.IncidentClosed(),
        ev.TitleSet(title="DNS resolution failing"),
        ev.SeveritySet(severity="SEV2"),
        ev.StatusSet(status="monitoring"),
        ev.RoleAssigned(role="commander", person="alice"),
        ev.NoteAdded(text="paged the DNS team"),
        ev.BookmarkAdded(label="first page"),
        ev.TaskAdded(text="alert on empty records", owner="bob", priority="P1", type="prevent"),
        ev.TaskAdded(text="no owner"),
        ev.StatusUpdatePosted(conditions="DNS failing", actions="failover", needs="none"),
        ev.ProbeStateChanged(
            target="dns", service="dns", from_state="up", to_state="down", reason="NXDOMAIN"
        ),
        ev.ProbeStateChanged(target="dns", from_state="down", to_state="up", latency_ms=3.0),
        ev.ProbeSamples(samples=[sample, sample]),
        ev.ProbeSamples(samples=[sample]),
        ev.ProbeSamples(samples=[]),
        # Long enough to be read without its samples, one hostile target among them.
        ev.ProbeSamples(
            samples=[sample] * 150
            + [sample.model_copy(update={"target": PAYLOADS["osc52_clipboard"]})]
        ),
        ev.ProbeEngineHealth(shard=1, shards=2, probes_per_s=12.5, lag_p99_ms=3.6, slots=9),
        ev.ProbeEngineHealth(),
        ev.RunbookOpened(runbook="dns", title="DNS failover", steps=["s1", "s2"]),
        ev.RunbookOpened(runbook="dns"),
        ev.StepSet(runbook="dns", step="s1", status="done", note="flushed"),
        ev.StepSet(runbook="dns", step="s2", status="skipped"),
        ev.StepVerified(runbook="dns", step="s1", condition="dns is up", holds=True),
        ev.StepVerified(runbook="dns", step="s1", condition="dns is up", holds=False),
        ev.CommandRun(
            runbook="dns",
            step="s1",
            command="# flush\n  dig example.com  \nsecond " + "x" * 70,
            exit_code=0,
            output="ok",
            truncated=True,
            duration_s=1.5,
        ),
        ev.CommandRun(runbook="dns", step="s1", command="true", exit_code=None),
        ev.ControlRequested(
            request_id="r1",
            service="web",
            control="shed",
            from_value=0,
            to_value=40.0,
            reason="overload",
            unit="%",
            needs_second=True,
            auto_revert_s=300.0,
            runbook="dns",
            step="s1",
        ),
        ev.ControlRequested(request_id="r2", service="db", control="limit", to_value="none"),
        ev.ControlRequested(request_id="r3", service="db", control="cache", to_value=True),
        ev.ControlApplied(request_id="r1", service="web", control="shed", value=40, unit="%"),
        ev.ControlApplied(request_id="r2", service="db", control="limit", value=None),
        ev.ControlFailed(request_id="r1", service="web", control="shed", error="HTTP 503"),
        ev.ControlEffect(
            request_id="r1", service="web", control="shed", before=[sample], after=[], after_s=5
        ),
        ev.ControlAutoRevertExtended(
            request_id="r1",
            service="web",
            control="shed",
            until="2025-10-20T08:00:00Z",
            extend_s=600,
            reason="still hot",
        ),
        ev.ControlConfirmed(request_id="r1", reason="looks right"),
        ev.PresenceHeartbeat(machine="laptop", session="abc", leaving=True),
        ev.PresenceHeartbeat(machine="laptop"),
        ev.ScenarioEvent(sim_seq=3, sim_time=12.6, scenario="aws", service="ec2", title="fault"),
        ev.AlertObserved(
            fingerprint="f1",
            alertname="DNSDown",
            status="firing",
            service="dns",
            labels={"team": "dns"},
            annotations={"summary": "DNS is down"},
            silenced_by=["s1"],
            source="api",
        ),
        ev.AlertObserved(fingerprint="f2", status="resolved"),
    ]


def hostile_variants(event: ev.BaseEvent) -> list[ev.BaseEvent]:
    """The event once per hostile payload in each of its text fields (and its actor)."""
    out = []
    data = event.model_dump(mode="json")
    texts = [name for name, value in data.items() if type(value) is str and name != "kind"]
    payloads = [p for name, p in PAYLOADS.items() if name != "huge_line" and utf8(p)]
    for i, payload in enumerate(payloads):
        field = texts[i % len(texts)]
        if field in {"severity", "status", "from_state", "to_state", "source", "ts", "prev"}:
            field = "actor"
        if field == "hash":
            continue
        out.append(type(event).model_validate({**data, field: payload, "hash": ""}))
    return out


def show_bytes(path: Path, clock: Callable[[str], str] | None) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    out = io.BytesIO()
    Shower(path, lambda error: errors.append(str(error)), clock).show(out)
    return out.getvalue().decode().split("\n")[:-1], errors


def test_every_kind_is_summarised_by_its_own_function() -> None:
    assert set(SUMMARIES) == set(ev.EVENT_TYPES)
    assert {e.kind for e in every_kind()} == set(ev.EVENT_TYPES)


def test_the_fast_path_prints_what_the_typed_events_say_for_every_kind_and_payload(
    tmp_path: Path,
) -> None:
    """The equivalence that lets the fast path exist: byte for byte the reference's lines."""
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    events: list[ev.BaseEvent] = []
    for event in every_kind():
        events += [event, *hostile_variants(event)]
    unknown = {"kind": "pager_escalated", "policy": "tier-2", "note": PAYLOADS["osc52_clipboard"]}
    for i, event in enumerate(events):
        stamped = event.model_copy(update={"ts": f"2025-10-20T23:{i // 60 % 60:02d}:{i % 60:02d}Z"})
        log.append(stamped)
    log.close()
    line, _ = codec.encode(
        {
            "v": 2,
            "seq": len(events) + 1,
            "ts": "2025-10-21T06:00:00.5Z",
            "actor": "x",
            "prev": log.head,
            **unknown,
        }
    )
    with path.open("ab") as fh:
        fh.write(line)
    datas = [orjson.loads(raw) for raw in path.read_bytes().splitlines()]
    day = local_day(datas[0]["ts"])
    for fast_clock, reference_clock in (
        (incident_clock(), lambda ts: clock(ts, day)),
        (None, None),
    ):
        shown, errors = show_bytes(path, fast_clock)
        assert errors == []
        expected = [reference_line(data, reference_clock) for data in datas]
        assert len(shown) == len(expected) == len(events) + 1
        for got, want in zip(shown, expected, strict=True):
            assert got == want
            assert_terminal_safe(got, one_line=True)
        # format_record, the per-dict path the fast one falls back to, agrees as well.
        assert [format_record(d, None, reference_clock) for d in datas] == expected
        # And so do worker processes showing the log in ranges.
        fresh = incident_clock() if fast_clock is not None else None
        shower, by_ranges, errors = show_with(path, fresh, 3)
        assert by_ranges.decode().split("\n")[:-1] == expected and shower.forked == 2


JUNK_VALUES: list[object] = [
    None,
    5,
    -1,
    2.5,
    10**400 // 10**300,
    True,
    "x",
    "",
    [],
    [1],
    {},
    {"a": 1},
]


def test_a_field_of_another_type_takes_the_typed_path_or_reads_the_same(tmp_path: Path) -> None:
    """Whatever a field holds, the fast summary is the typed one, or it steps aside."""
    for event in every_kind():
        data = {**event.model_dump(mode="json"), **ENVELOPE}
        for field in [name for name in data if name not in ev.ENVELOPE_FIELDS]:
            for value in [*JUNK_VALUES, "missing"]:
                changed = dict(data)
                if value == "missing":
                    del changed[field]
                else:
                    changed[field] = value
                try:
                    typed: str | None = ev.parse_event(changed).summary()
                except ev.EventError:
                    typed = None
                try:
                    fast = SUMMARIES[data["kind"]](changed)
                except ODD_VALUE:
                    fast = None  # stepping aside by raising is allowed too
                if field == "samples" and type(value) is list:
                    continue  # show counts the entries of a samples list; verify checks them
                assert fast is None or fast == typed, (data["kind"], field, value, fast, typed)
                if typed is not None:
                    assert summary(changed) == typed
                else:
                    with pytest.raises(ev.EventError):
                        summary(changed)


def test_a_del_character_is_shown_not_sent(tmp_path: Path) -> None:
    """JSON carries DEL unescaped, so an ASCII line without a backslash can still hold one."""
    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append(ev.NoteAdded(text="rub\x7bout\x7f", actor="a\x7f"))
    assert b"\x7f" in path.read_bytes()
    shown, _ = show_bytes(path, None)
    assert shown[0].endswith("  a␡  note: rub{out␡")


def test_junk_is_reported_by_line_and_a_torn_last_line_waits_for_more(tmp_path: Path) -> None:
    path = tmp_path / "inc.jsonl"
    log = IncidentLog.open(path)
    log.append_many([ev.NoteAdded(text=f"n{i}") for i in range(3)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"junk\n" + lines[1] + b'{"kind":"x"}\n' + lines[2] + b"{tor\n")
    errors: list[str] = []
    out = io.BytesIO()
    shower = Shower(path, lambda error: errors.append(str(error)), None, follow=True)
    shower.show(out)
    assert [line.split()[-1] for line in out.getvalue().decode().splitlines()] == ["n0", "n1", "n2"]
    assert errors == [
        f"{path}:2: not JSON (unexpected character, expected a JSON value)",
        f"{path}:4: not an event: 'seq' is not a positive integer",
    ]
    # The last line may be a write in progress: not reported until a line follows it.
    with path.open("ab") as fh:
        fh.write(lines[1])  # an old seq again: not printed twice
    shower.show(out)
    assert errors[2:] == [f"{path}:6: not JSON (unexpected character, expected a string key)"]
    assert out.getvalue().decode().count("\n") == 3


def test_show_prints_to_a_stdout_that_takes_only_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import contextlib

    from warroom.cli import main

    path = tmp_path / "inc.jsonl"
    IncidentLog.open(path).append_many([ev.NoteAdded(text="café"), ev.NoteAdded(text="b")])
    assert main(["log", "show", "--utc", str(path)]) == 0
    via_bytes = capsys.readouterr().out
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["log", "show", "--utc", str(path)]) == 0
    assert text.getvalue() == via_bytes and via_bytes.count("\n") == 2 and "note: café" in via_bytes


def ranged_log(path: Path) -> list[bytes]:
    """A log over two days with hostile payloads, a junk line in the middle, a line of the
    wrong type and a torn last line: what splitting into ranges must not change."""
    log = IncidentLog.open(path)
    payloads = [p for name, p in PAYLOADS.items() if name != "huge_line" and utf8(p)]
    notes = []
    for i in range(400):
        text = payloads[i % len(payloads)] if i % 7 == 0 else f"note {i}"
        stamp = f"2025-10-{20 + i // 200}T23:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z"
        notes.append(ev.NoteAdded(text=text, ts=stamp, actor=f"r{i % 5}"))
    log.append_many(notes)
    log.close()
    lines = path.read_bytes().splitlines(keepends=True)
    lines[150:150] = [b"junk\n"]
    lines[260] = lines[260].replace(b'"text":"', b'"text":5,"x":"')
    lines.append(b'{"actor":"x","kin\n')
    path.write_bytes(b"".join(lines))
    return lines


def show_with(
    path: Path, clock: Callable[[str], str] | None, workers: int
) -> tuple[Shower, bytes, list[str]]:
    errors: list[str] = []
    out = io.BytesIO()
    shower = Shower(path, lambda error: errors.append(str(error)), clock, workers=workers)
    shower.show(out)
    return shower, out.getvalue(), errors


@pytest.mark.parametrize("workers", [2, 3, 7])
def test_ranges_shown_by_workers_print_what_one_process_prints(
    tmp_path: Path, workers: int
) -> None:
    path = tmp_path / "inc.jsonl"
    ranged_log(path)
    outputs = []
    for count in (1, workers):
        shower, shown, errors = show_with(path, incident_clock(), count)
        outputs.append((shown, errors, shower.offset, shower.line))
        assert shower.forked == count - 1
    assert outputs[0] == outputs[1]
    shown, errors, _, line = outputs[0]
    assert shown.count(b"\n") == 399 and line == 402
    assert b"  Oct 21 23:06:39  r4  note: " in shown  # the incident's day, known to the workers
    assert errors == [
        f"{path}:151: not JSON (unexpected character, expected a JSON value)",
        f"{path}:261: note_added: field 'text': Input should be a valid string",
    ]


def test_a_line_that_is_not_json_at_a_range_end_is_reported_once_in_order(tmp_path: Path) -> None:
    from warroom.log.showranges import line_bounds

    path = tmp_path / "inc.jsonl"
    lines = ranged_log(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        bound = line_bounds(fd, 0, path.stat().st_size, 2)[1]
    finally:
        os.close(fd)
    # The line that ends at the boundary becomes junk of the same length: the same ranges.
    index = next(i for i in range(len(lines)) if sum(map(len, lines[: i + 1])) == bound)
    lines[index] = b"x" * (len(lines[index]) - 1) + b"\n"
    path.write_bytes(b"".join(lines))
    results = [show_with(path, None, workers)[1:] for workers in (1, 2)]
    assert results[0] == results[1]
    assert (
        results[0][1][1]
        == f"{path}:{index + 1}: not JSON (unexpected character, expected a JSON value)"
    )


def children() -> set[int]:
    """This process's child processes, zombies included (Linux)."""
    found: set[int] = set()
    for listing in Path("/proc/self/task").glob("*/children"):
        found.update(int(pid) for pid in listing.read_text().split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_a_closed_pipe_stops_the_workers_too(tmp_path: Path) -> None:
    """`log show | head`: the write fails, and no worker is left running or unreaped."""
    path = tmp_path / "inc.jsonl"
    ranged_log(path)
    before = children()
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb") as out, pytest.raises(BrokenPipeError):
        Shower(path, lambda error: None, None, workers=3).show(out)
    assert children() <= before


def test_where_no_worker_can_start_the_parent_shows_every_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    path = tmp_path / "inc.jsonl"
    ranged_log(path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no such folder"))
    shower, shown, errors = show_with(path, incident_clock(), 3)
    assert shower.forked == 0
    assert (shown, errors) == show_with(path, incident_clock(), 1)[1:]


def test_a_first_line_longer_than_a_read_still_lets_the_workers_start(tmp_path: Path) -> None:
    """The workers wait for the first event shown: here one of 2,000 samples (140 kB)."""
    path = tmp_path / "inc.jsonl"
    sample = ev.ProbeSample(target="dns", state="up", ok=3, count=3, latency_ms=1.5)
    log = IncidentLog.open(path)
    log.append_many(
        [ev.ProbeSamples(samples=[sample] * 2000), *[ev.NoteAdded(text=f"n{i}") for i in range(50)]]
    )
    log.close()
    shower, shown, errors = show_with(path, incident_clock(), 2)
    assert shower.forked == 1 and errors == []
    assert shown == show_with(path, incident_clock(), 1)[1]
    assert shown.split(b"\n")[0].endswith(b"probe samples (2000 targets)")


def test_a_pipe_out_is_widened_and_carries_the_same_lines(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "inc.jsonl"
    ranged_log(path)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        with os.fdopen(write_end, "wb") as out:
            Shower(path, lambda error: None, None, workers=2).show(out)
            if hasattr(fcntl, "F_GETPIPE_SZ"):
                assert fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) == 1 << 20
        assert pipe.read() == show_with(path, None, 1)[1]
