"""`warroom log show`'s lines: one safe terminal line per event, fast enough for huge logs.

The reference for every line is `reference_line`: the typed event's `summary()` after seq,
time and actor, through `untrusted.one_line`, so a note, an actor or a target name can neither
send escape sequences to the terminal nor forge a line of its own.

`Shower` streams a log at hundreds of thousands of lines a second and prints exactly what the
reference does (tests/test_log_show.py holds it to that for every kind): each line is decoded
by orjson to a plain dict (a probe_samples line without its samples, which it only counts),
summarised by its kind's function in `SUMMARIES`, timed through a per-second cache, and left
unsanitised only when its raw bytes prove there is nothing to sanitise (ASCII with no
backslash and no DEL: JSON holds control characters only as escapes). A kind without a
function, or a dict whose fields do not have the types the event model declares, takes the
typed path, which also names a bad field. The output goes out in blocks of bytes; a big
log is shown by one process per core, each a byte range (`showranges`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import orjson

from warroom.controls.words import value_words
from warroom.log import codec, showranges
from warroom.log.scan import LogError, OnBad, envelope_error, open_for_reading, where
from warroom.timefmt import clock, local_day, local_time
from warroom.untrusted import one_line

if TYPE_CHECKING:
    from warroom.events import BaseEvent

# The event models' enum values, spelled out so that showing a log imports no pydantic.
_PROBE_STATES = frozenset(("unknown", "up", "degraded", "down"))
_SEVERITIES = frozenset(("SEV1", "SEV2", "SEV3", "SEV4"))
_STATUSES = frozenset(("investigating", "identified", "monitoring", "resolved"))
_STEP_STATUSES = frozenset(("pending", "done", "skipped"))
_ALERT_STATUSES = frozenset(("firing", "suppressed", "resolved"))
_NUMBER = (int, float)
_VALUE = (bool, int, float, str)
_VALUE_OR_NONE = (bool, int, float, str, type(None))
_FLOAT_OR_NONE = (int, float, type(None))
_STR_OR_NONE = (str, type(None))
_MISSING: Any = object()
#: What a summary function may raise on a value the model would refuse or read otherwise
#: (a number too large for a float, ...): the typed path then decides.
_ODD_VALUE = (ValueError, TypeError, OverflowError, KeyError, AttributeError)


def _typed(data: dict[str, Any]) -> BaseEvent:
    from warroom import events as ev  # pydantic: imported only when a line needs it

    return ev.parse_event(data)


def _has(data: dict[str, Any], fields: tuple[tuple[str, tuple[type, ...], bool], ...]) -> bool:
    """Each (name, types, required) field is present when required and of one of the types."""
    for name, types, required in fields:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            if required:
                return False
        elif type(value) not in types:
            return False
    return True


def _samples_ok(samples: Any) -> bool:
    """A list of `ProbeSample`s as the model reads them (for the kinds that show them)."""
    if type(samples) is not list:
        return False
    for sample in samples:
        if (
            type(sample) is not dict
            or type(sample.get("target")) is not str
            or sample.get("state") not in _PROBE_STATES
            or type(sample.get("ok", 0)) is not int
            or type(sample.get("count", 0)) is not int
            or type(sample.get("latency_ms")) not in _FLOAT_OR_NONE
        ):
            return False
    return True


# Each function returns what the kind's `summary()` returns for `data`, or None (or raises one
# of `_ODD_VALUE`) when a field is missing or of another type than the model declares: the
# typed path then decides.


def _incident_opened(data: dict[str, Any]) -> str | None:
    title, severity = data.get("title"), data.get("severity", "SEV3")
    if type(title) is not str or type(data.get("incident_id")) is not str:
        return None
    if type(severity) is not str or severity not in _SEVERITIES:
        return None
    return f"incident declared: {title} ({severity})"


def _incident_closed(data: dict[str, Any]) -> str | None:
    text = data.get("summary_text", "")
    if type(text) is not str:
        return None
    return "incident closed" + (f": {text}" if text else "")


def _title_set(data: dict[str, Any]) -> str | None:
    title = data.get("title")
    return f"renamed to: {title}" if type(title) is str else None


def _severity_set(data: dict[str, Any]) -> str | None:
    severity = data.get("severity")
    if type(severity) is not str or severity not in _SEVERITIES:
        return None
    return f"severity set to {severity}"


def _status_set(data: dict[str, Any]) -> str | None:
    status = data.get("status")
    if type(status) is not str or status not in _STATUSES:
        return None
    return f"status set to {status}"


def _role_assigned(data: dict[str, Any]) -> str | None:
    role, person = data.get("role"), data.get("person")
    if type(role) is not str or type(person) is not str:
        return None
    return f"{role}: {person}"


def _note(data: dict[str, Any]) -> str | None:
    text = data.get("text")
    return f"note: {text}" if type(text) is str else None


def _bookmark(data: dict[str, Any]) -> str | None:
    label = data.get("label")
    return f"bookmark: {label}" if type(label) is str else None


_TASK = (
    ("text", (str,), True),
    ("owner", (str,), False),
    ("priority", (str,), False),
    ("type", (str,), False),
    ("link", (str,), False),
)


def _task(data: dict[str, Any]) -> str | None:
    if not _has(data, _TASK):
        return None
    owner = data.get("owner", "")
    return f"follow-up: {data['text']}" + (f" (owner {owner})" if owner else "")


_STATUS_UPDATE = (
    ("conditions", (str,), True),
    ("actions", (str,), False),
    ("needs", (str,), False),
)


def _status_update(data: dict[str, Any]) -> str | None:
    if not _has(data, _STATUS_UPDATE):
        return None
    return f"status update: {data['conditions']}"


def _state_changed(data: dict[str, Any]) -> str | None:
    target, reason = data.get("target"), data.get("reason", "")
    before, after = data.get("from_state"), data.get("to_state")
    if (
        type(target) is not str
        or type(reason) is not str
        or before not in _PROBE_STATES  # holds only str: a list or a dict raises TypeError
        or after not in _PROBE_STATES
        or type(data.get("service", "")) is not str
        or type(data.get("latency_ms")) not in _FLOAT_OR_NONE
    ):
        return None
    return f"{target} {before} -> {after}" + (f" ({reason})" if reason else "")


def _samples(data: dict[str, Any]) -> str | None:
    samples = data.get("samples")  # its entries are counted, not checked (verify does)
    if type(samples) is not list:
        return None
    count = len(samples)  # as `plural`, which costs a call on most lines of a big log
    return "probe samples (1 target)" if count == 1 else f"probe samples ({count} targets)"


_HEALTH = (
    ("shard", (int,), False),
    ("shards", (int,), False),
    ("targets", (int,), False),
    ("interval_s", _NUMBER, False),
    ("period_s", _NUMBER, False),
    ("probes", (int,), False),
    ("probes_per_s", _NUMBER, False),
    ("lag_p50_ms", _FLOAT_OR_NONE, False),
    ("lag_p99_ms", _FLOAT_OR_NONE, False),
    ("missed_rounds", (int,), False),
    ("late", (int,), False),
    ("slots_in_use", (int,), False),
    ("slots_peak", (int,), False),
    ("slots", (int,), False),
)


def _engine_health(data: dict[str, Any]) -> str | None:
    if not _has(data, _HEALTH):
        return None
    lag99 = data.get("lag_p99_ms")
    lag = "-" if lag99 is None else f"{float(lag99):.0f} ms"
    return (
        f"probe engine {data.get('shard', 0) + 1}/{data.get('shards', 1)}: "
        f"{float(data.get('probes_per_s', 0.0)):g} probes/s, "
        f"lag p99 {lag}, {data.get('missed_rounds', 0)} missed rounds, "
        f"{data.get('slots_in_use', 0)}/{data.get('slots', 0)} slots"
    )


def _runbook_opened(data: dict[str, Any]) -> str | None:
    runbook, title, steps = data.get("runbook"), data.get("title", ""), data.get("steps", [])
    if type(runbook) is not str or type(title) is not str or type(steps) is not list:
        return None
    if any(type(step) is not str for step in steps):
        return None
    return f"runbook opened: {title or runbook}"


def _step_set(data: dict[str, Any]) -> str | None:
    runbook, step, status = data.get("runbook"), data.get("step"), data.get("status")
    note = data.get("note", "")
    if type(runbook) is not str or type(step) is not str or type(note) is not str:
        return None
    if type(status) is not str or status not in _STEP_STATUSES:
        return None
    return f"step {runbook}/{step}: {status}" + (f" ({note})" if note else "")


def _step_verified(data: dict[str, Any]) -> str | None:
    runbook, step, condition = data.get("runbook"), data.get("step"), data.get("condition")
    holds = data.get("holds")
    if type(runbook) is not str or type(step) is not str or type(condition) is not str:
        return None
    if type(holds) is not bool:
        return None
    verb = "verified" if holds else "no longer verified"
    return f"step {runbook}/{step} {verb}: {condition}"


_COMMAND = (
    ("runbook", (str,), True),
    ("step", (str,), True),
    ("command", (str,), True),
    ("exit_code", (int, type(None)), True),
    ("output", (str,), False),
    ("truncated", (bool,), False),
    ("duration_s", _NUMBER, False),
)


def _command_run(data: dict[str, Any]) -> str | None:
    if not _has(data, _COMMAND):
        return None
    lines = [ln.strip() for ln in data["command"].splitlines()]
    first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
    if len(first) > 60:
        first = first[:59] + "…"
    more = " …" if len([ln for ln in lines if ln]) > 1 else ""
    return f"ran `{first}{more}` -> exit {data['exit_code']}"


_REQUESTED = (
    ("request_id", (str,), True),
    ("service", (str,), True),
    ("control", (str,), True),
    ("from_value", _VALUE_OR_NONE, False),
    ("to_value", _VALUE, True),
    ("reason", (str,), False),
    ("revert_of", _STR_OR_NONE, False),
    ("auto_revert_s", _FLOAT_OR_NONE, False),
    ("runbook", _STR_OR_NONE, False),
    ("step", _STR_OR_NONE, False),
    ("needs_second", (bool,), False),
    ("unit", (str,), False),
)


def _control_requested(data: dict[str, Any]) -> str | None:
    if not _has(data, _REQUESTED):
        return None
    unit, reason = data.get("unit", ""), data.get("reason", "")
    change = f"{value_words(data.get('from_value'), unit)} -> {value_words(data['to_value'], unit)}"
    return f"{data['service']}.{data['control']}: {change} requested" + (
        f" ({reason})" if reason else ""
    )


_APPLIED = (
    ("request_id", (str,), True),
    ("service", (str,), True),
    ("control", (str,), True),
    ("value", _VALUE_OR_NONE, True),
    ("response", (str,), False),
    ("unit", (str,), False),
)


def _control_applied(data: dict[str, Any]) -> str | None:
    if not _has(data, _APPLIED):
        return None
    value = value_words(data["value"], data.get("unit", ""))
    return f"{data['service']}.{data['control']} = {value} applied"


_FAILED = (
    ("request_id", (str,), True),
    ("service", (str,), True),
    ("control", (str,), True),
    ("error", (str,), True),
    ("value", _VALUE_OR_NONE, False),
    ("unit", (str,), False),
)


def _control_failed(data: dict[str, Any]) -> str | None:
    if not _has(data, _FAILED):
        return None
    return f"{data['service']}.{data['control']} change failed: {data['error']}"


_EFFECT = (
    ("request_id", (str,), True),
    ("service", (str,), True),
    ("control", (str,), True),
    ("after_s", _NUMBER, False),
)


def _control_effect(data: dict[str, Any]) -> str | None:
    before, after = data.get("before", []), data.get("after", [])
    if not _has(data, _EFFECT) or not _samples_ok(before) or not _samples_ok(after):
        return None

    def states(samples: list[dict[str, Any]]) -> str:
        return ",".join(f"{s['target']}={s['state']}" for s in samples) or "-"

    lever = f"{data['service']}.{data['control']}"
    return f"effect of {lever}: {states(before)} -> {states(after)}"


_EXTENDED = (
    ("request_id", (str,), True),
    ("service", (str,), True),
    ("control", (str,), True),
    ("until", (str,), True),
    ("extend_s", _NUMBER, True),
    ("reason", (str,), False),
)


def _auto_revert_extended(data: dict[str, Any]) -> str | None:
    if not _has(data, _EXTENDED):
        return None
    reason = data.get("reason", "")
    lever = f"{data['service']}.{data['control']}"
    return f"{lever}: auto-revert pushed back to {data['until']}" + (
        f" ({reason})" if reason else ""
    )


def _control_confirmed(data: dict[str, Any]) -> str | None:
    request_id, reason = data.get("request_id"), data.get("reason")
    if type(request_id) is not str or type(reason) is not str:
        return None
    return f"change {request_id} confirmed ({reason})"


_PRESENCE = (
    ("machine", (str,), True),
    ("session", (str,), False),
    ("interval_s", _NUMBER, False),
    ("leaving", (bool,), False),
)


def _presence(data: dict[str, Any]) -> str | None:
    if not _has(data, _PRESENCE):
        return None
    where_now = "left" if data.get("leaving", False) else "here"
    return f"{data.get('actor', '') or '?'} {where_now} on {data['machine']}"


def _scenario(data: dict[str, Any]) -> str | None:
    title, sim_time = data.get("title"), data.get("sim_time")
    if (
        type(title) is not str
        or type(sim_time) not in _NUMBER
        or type(data.get("sim_seq")) is not int
        or type(data.get("scenario", "")) is not str
        or type(data.get("service", "")) is not str
    ):
        return None
    return f"[sim t={float(data['sim_time']):.0f}s] {title}"


_ALERT = (
    ("fingerprint", (str,), True),
    ("alertname", (str,), False),
    ("service", (str,), False),
    ("labels", (dict,), False),
    ("annotations", (dict,), False),
    ("starts_at", (str,), False),
    ("ends_at", (str,), False),
    ("generator_url", (str,), False),
    ("silenced_by", (list,), False),
)


def _alert(data: dict[str, Any]) -> str | None:
    status = data.get("status")
    if not _has(data, _ALERT) or type(status) is not str or status not in _ALERT_STATUSES:
        return None
    if data.get("source", "webhook") not in ("webhook", "api"):
        return None
    labels, annotations = data.get("labels", {}), data.get("annotations", {})
    for mapping in (labels, annotations):
        if any(type(value) is not str for value in mapping.values()):
            return None
    if any(type(name) is not str for name in data.get("silenced_by", [])):
        return None
    service = data.get("service", "")
    where_from = f" ({service})" if service else ""
    text = annotations.get("summary", "")
    name = data.get("alertname", "") or data["fingerprint"]
    return f"alert {name} {status}{where_from}" + (f": {text}" if text else "")


#: kind -> its summary from the decoded dict, or None to take the typed path. Kept equal to
#: the models' `summary()` by tests/test_log_show.py; a kind missing here takes the typed path.
SUMMARIES: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "incident_opened": _incident_opened,
    "incident_closed": _incident_closed,
    "title_set": _title_set,
    "severity_set": _severity_set,
    "status_set": _status_set,
    "role_assigned": _role_assigned,
    "note_added": _note,
    "bookmark_added": _bookmark,
    "task_added": _task,
    "status_update_posted": _status_update,
    "probe_state_changed": _state_changed,
    "probe_samples": _samples,
    "probe_engine_health": _engine_health,
    "runbook_opened": _runbook_opened,
    "step_set": _step_set,
    "step_verified": _step_verified,
    "command_run": _command_run,
    "control_requested": _control_requested,
    "control_applied": _control_applied,
    "control_failed": _control_failed,
    "control_effect": _control_effect,
    "control_auto_revert_extended": _auto_revert_extended,
    "control_confirmed": _control_confirmed,
    "presence": _presence,
    "scenario_event": _scenario,
    "alert_observed": _alert,
}


_SAMPLES_KEY = b',"samples":['
_AFTER_SAMPLES = b'],"seq":'
_TARGET_KEY = b'"target":'
_KIND_SAMPLES = b',"kind":"probe_samples",'
_PLACEHOLDER: list[dict[str, Any]] = [{}]
#: Below this many bytes a probe_samples line is decoded whole (cutting costs more).
_SAMPLES_CUT_MIN = 640


def decode(raw: bytes) -> Any:
    """orjson.loads, except that a canonical probe_samples line is read without its samples.

    Sample arrays are most of a big log's bytes and `log show` only counts them. In canonical
    JSON an unescaped `"` is always a delimiter, so these key patterns cannot match inside a
    string; the array's entries are counted by their `"target"` keys.
    """
    return _without_samples(raw)[0] if _KIND_SAMPLES in raw else orjson.loads(raw)


def _without_samples(raw: bytes) -> tuple[Any, bytes]:
    """`decode` of a line that holds `_KIND_SAMPLES`, and the bytes it was decoded from (all
    that its shown line can hold besides the count)."""
    start = raw.find(_SAMPLES_KEY)
    end = raw.rfind(_AFTER_SAMPLES)
    if 0 < start < end:
        cut = raw[: start + len(_SAMPLES_KEY)] + raw[end:]
        try:
            obj = orjson.loads(cut)
        except orjson.JSONDecodeError:
            return orjson.loads(raw), raw
        if type(obj) is dict and obj.get("samples") == []:
            obj["samples"] = _PLACEHOLDER * raw.count(_TARGET_KEY, start, end)
            return obj, cut
    return orjson.loads(raw), raw


def summary(data: dict[str, Any]) -> str:
    """The event's one-line summary; `events.EventError` when the kind's fields are wrong."""
    fast = SUMMARIES.get(data["kind"])
    if fast is not None:
        try:
            text = fast(data)
        except _ODD_VALUE:
            text = None
        if text is not None:
            return text
    return _typed(data).summary()


def incident_clock() -> Callable[[str], str]:
    """`timefmt.clock` for a log read in order: local times, dated on days other than the
    day (local) of the first event it is given, the incident's start.

    This runs for every line of a million-event log: a UTC stamp (`...Z`) is looked up by its
    second (its first 19 characters), and a second not seen yet is worked out from its UTC
    hour's local form (exact in every zone whose offset is whole hours; the others are
    formatted, each second once). Any other text is formatted as it is.
    """
    hours: dict[str, str | None] = {}
    seconds: dict[str, str] = {}
    seen: dict[str, str] = {}
    day: date | None = None

    def slow(ts: str) -> str:
        nonlocal day
        if day is None:
            day = local_day(ts) or datetime.now().date()
        if len(ts) >= 20 and ts[-1] == "Z" and ts[13] == ":" and ts[16] == ":":
            hour = ts[:13]
            prefix = hours.get(hour, "")
            if prefix == "":
                start = f"{hour}:00:00Z"
                moment = local_time(start)
                offset = moment.utcoffset() if moment is not None else None
                whole = offset is not None and offset.total_seconds() % 3600 == 0
                prefix = clock(start, day)[:-6] if whole else None
                if len(hours) < 100_000:
                    hours[hour] = prefix
            if prefix is not None:
                return prefix + ts[13:19]
        key = ts[:19] if len(ts) > 19 and ts[-1] == "Z" else ts
        text = seen.get(key)
        if text is None:
            text = clock(key, day)
            if len(seen) < 100_000:
                seen[key] = text
        return text

    def one(ts: str) -> str:
        # What `slow` makes of a stamp ending in Z depends on its first 19 characters only;
        # its hour's local form, when known, is taken here (a call costs more than this).
        if len(ts) > 19 and ts[-1] == "Z":
            second = ts[:19]
            text = seconds.get(second)
            if text is None:
                prefix = hours.get(ts[:13])
                if prefix is not None and ts[13] == ":" and ts[16] == ":":
                    text = prefix + ts[13:19]
                else:
                    text = slow(ts)
                if len(seconds) >= 100_000:
                    seconds.clear()  # a log is read in order: old seconds do not come back
                seconds[second] = text
            return text
        return slow(ts)

    # For `showranges.clock_ready`: a copy of this clock in a worker reads the same stamps
    # the same way once the incident's day is fixed.
    one.started = lambda: day is not None  # type: ignore[attr-defined]
    return one


def utc_clock(ts: str) -> str:
    """`--utc`: UTC to the second (`2025-10-20 06:48:00`), any other text as it is."""
    return f"{ts[:10]} {ts[11:19]}" if len(ts) >= 19 and ts[10] == "T" else ts or "-"


def _shown_time(data: dict[str, Any], clock: Callable[[str], str] | None) -> str:
    ts = data.get("ts", "")
    if clock is not None and type(ts) is str and ts:
        return clock(ts)
    return utc_clock(ts)


def _clean(raw: bytes) -> bool:
    """Whether a line's bytes prove its text needs no sanitising (ASCII, no escape, no DEL)."""
    return raw.isascii() and b"\\" not in raw and b"\x7f" not in raw


#: Lines whose bytes are checked at once by `_clean_flags` (most groups of a log are clean).
_CLEAN_GROUP = 32
#: A line longer than this is checked on its own, when shown (a big probe_samples line only
#: on the part of it that is shown).
_CLEAN_ALONE = 4096


def _clean_flags(lines: list[bytes]) -> list[bool | None]:
    """`_clean` of each line, checked a group of lines at a time (three scans of a group cost
    far less than three calls per line); a group that is not clean is checked line by line.
    None for a line left to be checked on its own (longer than `_CLEAN_ALONE`)."""
    flags: list[bool | None] = []
    step = _CLEAN_GROUP
    for i in range(0, len(lines), step):
        group = lines[i : i + step]
        if max(map(len, group)) > _CLEAN_ALONE:
            short = [raw for raw in group if len(raw) <= _CLEAN_ALONE]
            if _clean(b"\n".join(short)):
                flags += [None if len(raw) > _CLEAN_ALONE else True for raw in group]
            else:
                flags += [None if len(raw) > _CLEAN_ALONE else _clean(raw) for raw in group]
        elif _clean(b"\n".join(group)):
            flags += [True] * len(group)
        else:
            flags += [_clean(raw) for raw in group]
    return flags


def format_record(
    data: dict[str, Any], raw: bytes | None = None, clock: Callable[[str], str] | None = None
) -> str:
    """seq, time, actor and summary: one sanitised terminal line.

    The time is `clock(ts)` (e.g. `incident_clock()`: local `07:52:14`), or without one UTC
    to the second (`2025-10-20 06:48:00`, what scripts parse). `raw`, the line's bytes,
    allows a shortcut: JSON holds control characters only as backslash escapes, so an ASCII
    line without a backslash or DEL has nothing to sanitise.
    """
    line = f"{data['seq']:>6}  {_shown_time(data, clock)}  {data.get('actor') or '-'}  "
    line += summary(data)
    if raw is not None and _clean(raw):
        return line
    return one_line(line)


def reference_line(data: dict[str, Any], clock: Callable[[str], str] | None = None) -> str:
    """The line `log show` prints for an event, by the typed model alone (what the fast
    paths are held to); `events.EventError` when the event is not valid."""
    text = _typed(data).summary()
    shown = _shown_time(data, clock)
    return one_line(f"{data['seq']:>6}  {shown}  {data.get('actor') or '-'}  {text}")


class Shower:
    """Streams a log's events as `log show` lines; call `show()` again to print what was
    appended since (`--follow`).

    The same reading rules as `scan.RecordReader`: a line that is not an event goes to
    `on_bad` with its file:line and is skipped; a last line that is not JSON is left unread
    (it may be a write in progress), and reported once a line follows it; a file replaced or
    cut below what was read is read again from the start. With `follow`, a seq already
    printed is not printed again; without it, a big log is shown in ranges by `workers`
    processes (`showranges`), with the same output.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_bad: OnBad,
        clock: Callable[[str], str] | None = None,
        follow: bool = False,
        workers: int | None = None,
    ) -> None:
        self.path = path
        self.on_bad = on_bad
        self.clock = clock if clock is not None else utc_clock
        #: Byte offset just past the last line consumed, and the line number there.
        self.offset = 0
        self.line = 1
        self.last_seq: int | None = 0 if follow else None
        #: Processes to show a log with (None: the cores, on a log big enough to pay).
        self.workers = workers
        #: Where `report` puts (line, why) instead of calling `on_bad` (a worker's range).
        self.problems: list[tuple[int, str]] | None = None
        #: Ranges of the log that worker processes showed, so far.
        self.forked = 0
        self._inode: int | None = None
        #: A line that is not JSON (its line and why), reported once a line follows it;
        #: the offset where it starts and its line.
        self.pending: tuple[int, str] | None = None
        self.pending_at = (0, 1)

    def show(self, out: BinaryIO) -> None:
        """Write the lines for the events appended since the last call to `out`."""
        fd = open_for_reading(self.path)
        try:
            info = os.fstat(fd)
            if self._inode is not None and (
                info.st_ino != self._inode or info.st_size < self.offset
            ):
                self.offset, self.line = 0, 1
            self._inode = info.st_ino
            workers = self.workers
            if workers is None:
                workers = showranges.workers_for(info.st_size - self.offset)
            if workers > 1 and self.last_seq is None:
                showranges.show_in_ranges(self, fd, info.st_size, out, workers)
            else:
                self.show_range(fd, info.st_size, out)
        finally:
            os.close(fd)
        if self.pending is not None:
            # The last line is not JSON: leave it unread, it may be a write in progress.
            self.pending = None
            self.offset, self.line = self.pending_at
        out.flush()

    def show_range(self, fd: int, end: int, out: IO[bytes]) -> None:
        """Write the lines from `self.offset` up to `end` (a line boundary) to `out`."""
        for offset, lines in codec.line_blocks(fd, self.offset, end):
            text = self.show_lines(offset, lines)
            if text:
                out.write(text.encode())

    def report(self, line_no: int, why: str) -> None:
        """A line that is not shown: to `on_bad` with its file:line (or kept, in a worker)."""
        if self.problems is not None:
            self.problems.append((line_no, why))
        else:
            self.on_bad(LogError(f"{where(self.path, line_no)}: {why}"))

    def flush_pending(self) -> None:
        """Report a last line that is not JSON now that a line follows it."""
        if self.pending is not None:
            self.report(*self.pending)
            self.pending = None

    def show_lines(self, offset: int, lines: list[bytes]) -> str:
        """The output for one block of whole lines starting at `offset`, and the reading
        position moved past them (a last line that is not JSON stays pending)."""
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        summaries, clock, last_seq, pending = SUMMARIES, self.clock, self.last_seq, self.pending
        cut_min, kind_samples, without_samples = _SAMPLES_CUT_MIN, _KIND_SAMPLES, _without_samples
        out: list[str] = []
        append = out.append
        line_no = self.line - 1
        for raw, clean in zip(lines, _clean_flags(lines), strict=True):
            line_no += 1
            if pending is not None:
                self.report(*pending)
                pending = None
            try:
                if len(raw) > cut_min and kind_samples in raw:
                    data, decoded = without_samples(raw)
                    if clean is None:
                        clean = _clean(decoded)
                else:
                    data = loads(raw)
            except decode_error as exc:
                why = exc.args[0].split(":")[0]
                pending = (line_no, f"not JSON ({why})")
                continue
            try:
                text = summaries[data["kind"]](data)
                seq, ts, actor = data["seq"], data["ts"], data["actor"]
                digest, prev = data["hash"], data["prev"]
            except _ODD_VALUE:
                text = None
            # The envelope as `scan.envelope_error` checks it (ts also not empty: clock's).
            if (
                text is None
                or type(seq) is not int
                or seq < 1
                or type(ts) is not str
                or not ts
                or type(actor) is not str
                or type(digest) is not str
                or len(digest) != 64
                or type(prev) is not str
                or len(prev) != 64
                or type(data.get("v", 1)) is not int
            ):
                last_seq = self._slow(raw, line_no, append, last_seq)
                continue
            if last_seq is not None:
                if seq <= last_seq:
                    continue
                last_seq = seq
            # str.rjust: what the format spec `>6` does to an int, at a third of its cost.
            shown = f"{str(seq).rjust(6)}  {clock(ts)}  {actor or '-'}  {text}"
            if clean is None:
                clean = _clean(raw)
            append(shown if clean else one_line(shown))
        self.last_seq, self.pending = last_seq, pending
        self.offset = offset + sum(map(len, lines)) + len(lines)
        self.line = line_no + 1
        if pending is not None:
            self.pending_at = (self.offset - len(lines[-1]) - 1, line_no)
        return "\n".join(out) + "\n" if out else ""

    def _slow(
        self, raw: bytes, line_no: int, append: Callable[[str], None], last_seq: int | None
    ) -> int | None:
        """One line by the reference rules: the envelope checked and named, the typed path."""
        data = decode(raw)
        why = envelope_error(data)
        if why is not None:
            self.report(line_no, why)
            return last_seq
        seq = data["seq"]
        if last_seq is not None:
            if seq <= last_seq:
                return last_seq
            last_seq = seq
        from warroom.events import EventError

        try:
            append(format_record(data, raw, None if self.clock is utc_clock else self.clock))
        except EventError as exc:
            self.report(line_no, str(exc))
        return last_seq
