"""The control layer against real loopback servers, real subprocesses and a real incident log."""

from __future__ import annotations

import ast
import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from controls_servers import FlagServer, flag_server, refused_port

from warroom import events as ev
from warroom.config import load_config
from warroom.controls.client import ControlError
from warroom.controls.model import ControlConfig, coerce_value, format_value
from warroom.controls.service import AUTO_REVERT_ACTOR, ControlService
from warroom.errors import WarroomError
from warroom.log.store import IncidentLog
from warroom.state import fold

TOKEN = "s3cr3t-flag-token-0123456789"


@pytest.fixture
def log(tmp_path: Path) -> IncidentLog:
    incident = IncidentLog.open(tmp_path / "incident.jsonl")
    yield incident
    incident.close()


def http_control(server: FlagServer, **overrides: Any) -> ControlConfig:
    data: dict[str, Any] = {
        "service": "checkout",
        "control": "load_shed",
        "label": "Shed load",
        "kind": "level",
        "timeout": "0.5s",
        "apply": {
            "url": server.url("shed"),
            "headers": {"Authorization": "Bearer ${FLAG_TOKEN}"},
            "body": {"value": "{value}", "why": "{reason}", "by": "{actor}"},
        },
        "read": {"url": server.url("shed"), "field": "flag.value"},
    }
    data.update(overrides)
    return ControlConfig.model_validate(data)


def make_service(
    log: IncidentLog, configs: list[ControlConfig], token: str = TOKEN, **kwargs: Any
) -> ControlService:
    kwargs.setdefault("effect_after", 0.05)
    return ControlService.from_config(
        configs, log.append, env={"FLAG_TOKEN": token}, actor="ana@host", **kwargs
    )


def kinds(log: IncidentLog) -> list[str]:
    return [event.kind for event in log.read()]


# -- declarations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apply", "message"),
    [
        ({"argv": ["/bin/setflag", "--value={value}"]}, "must be a whole string"),
        ({"url": "http://127.0.0.1/flags/{value}"}, "must not hold placeholders"),
        ({"url": "http://x", "argv": ["/bin/true"]}, "not both"),
        ({"url": "http://x", "body": {"text": "set to {value}"}}, "must be a whole string"),
        ({"argv": ["{value}"]}, "must be the program"),
    ],
)
def test_a_value_can_never_be_spliced_into_text(apply: dict[str, Any], message: str) -> None:
    data = {
        "service": "checkout",
        "control": "flag",
        "kind": "toggle",
        "apply": apply,
        "read": {"argv": ["/bin/getflag"]},
    }
    with pytest.raises(ValueError, match=message):
        ControlConfig.model_validate(data)


def test_values_are_checked_against_kind_and_bounds() -> None:
    server = FlagServer(token=TOKEN, port=1)
    level = http_control(server).spec()
    assert coerce_value(level, "40") == 40
    assert coerce_value(level, "12.5 %") == 12.5
    with pytest.raises(ValueError, match="between 0 and 100 %"):
        coerce_value(level, 140)
    rate = http_control(server, kind="rate", max=500).spec()
    assert format_value(rate, 200.0) == "200 req/s"
    with pytest.raises(ValueError, match="expected a number"):
        coerce_value(rate, "fast")
    choice = http_control(server, kind="choice", choices=["primary", "replica"]).spec()
    with pytest.raises(ValueError, match="one of primary, replica"):
        coerce_value(choice, "tertiary")
    toggle = http_control(server, kind="toggle").spec()
    assert coerce_value(toggle, "off") is False
    assert format_value(toggle, True) == "on"


# -- the change flow -------------------------------------------------------------------------


async def test_change_is_logged_requested_applied_with_the_value_read_back(
    log: IncidentLog,
) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        service = make_service(log, [http_control(server)])
        async with service:
            outcome = await service.request_change(
                "checkout", "load_shed", "40", "  shed   bots ", runbook="rb", step="s1"
            )
            await service.wait_for_effects()
    assert outcome.ok and outcome.value == 40
    # The body template is resolved structurally: the value arrives as a JSON number.
    assert server.posts[0]["body"] == {"value": 40, "why": "shed bots", "by": "ana@host"}
    assert server.posts[0]["auth"] == f"Bearer {TOKEN}"
    events = list(log.read())
    assert [e.kind for e in events] == ["control_requested", "control_applied", "control_effect"]
    requested, applied, _ = events
    assert isinstance(requested, ev.ControlRequested)
    assert (requested.from_value, requested.to_value, requested.reason) == (0, 40, "shed bots")
    assert (requested.runbook, requested.step, requested.actor) == ("rb", "s1", "ana@host")
    assert isinstance(applied, ev.ControlApplied)
    assert applied.request_id == requested.request_id and applied.value == 40
    view = fold(events).control("checkout", "load_shed")
    assert view is not None and view.value == 40 and view.last_changed_by == "ana@host"
    # The flag server echoes the Authorization header; it must not reach the log.
    assert TOKEN not in log.path.read_text()


@pytest.mark.parametrize("mode", ["refused", "error", "hang", "bad_token", "lie", "no_env"])
async def test_a_failed_call_logs_why_and_the_true_value(log: IncidentLog, mode: str) -> None:
    async with flag_server(TOKEN, shed=10) as server:
        config = http_control(server)
        token = TOKEN
        if mode == "refused":
            gone = f"http://127.0.0.1:{refused_port()}/flags/shed"
            config = http_control(server, apply={"url": gone, "headers": {}})
        elif mode == "bad_token":
            token = "wrong-token-for-this"
        elif mode == "no_env":
            config = http_control(
                server,
                apply={"url": server.url("shed"), "headers": {"X-Key": "${MISSING_VAR}"}},
            )
        elif mode in ("error", "hang", "lie"):
            server.mode = mode
        service = make_service(log, [config], token=token)
        async with service:
            outcome = await service.request_change("checkout", "load_shed", 40, "shed")
    expected = {
        "refused": "connection refused (127.0.0.1:",
        "error": "HTTP 500: flag store is read-only (Bearer ***)",
        "hang": "timed out after 0.5s (127.0.0.1:",
        "bad_token": "HTTP 401 (check the token): bad token Bearer ***",
        "lie": "asked for 40 % but checkout reports 10 %",
        "no_env": "header X-Key: environment variable MISSING_VAR is not set",
    }[mode]
    assert not outcome.ok
    assert outcome.error.startswith(expected), outcome.error
    assert "\n" not in outcome.error
    events = list(log.read())
    assert [e.kind for e in events] == ["control_requested", "control_failed"]
    failed = events[1]
    assert isinstance(failed, ev.ControlFailed)
    assert failed.error == outcome.error
    assert failed.value == 10  # read back: the service still has the old value
    view = fold(events).control("checkout", "load_shed")
    assert view is not None and (view.value, view.error) == (10, outcome.error)
    assert TOKEN not in log.path.read_text()


async def test_cancelled_change_still_gets_a_result_in_the_log(log: IncidentLog) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        server.mode = "hang"
        service = make_service(log, [http_control(server, timeout="30s")])
        async with service:
            task = asyncio.create_task(service.request_change("checkout", "load_shed", 5, "x"))
            while len(server.posts) == 0 and "control_requested" not in kinds(log):
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    events = list(log.read())
    assert [e.kind for e in events] == ["control_requested", "control_failed"]
    assert "cancelled" in events[1].error


async def test_bad_requests_are_refused_before_anything_is_logged(log: IncidentLog) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        danger = http_control(server, control="failover", dangerous=True)
        service = make_service(log, [http_control(server), danger])
        async with service:
            with pytest.raises(ControlError, match="give a reason"):
                await service.request_change("checkout", "load_shed", 5, "   ")
            with pytest.raises(ControlError, match="between 0 and 100"):
                await service.request_change("checkout", "load_shed", 500, "why")
            with pytest.raises(ControlError, match="no control checkout/nope"):
                await service.request_change("checkout", "nope", 5, "why")
            with pytest.raises(ControlError, match=r"type the service name \(checkout\)"):
                await service.request_change("checkout", "failover", 5, "why", confirm="chekout")
            assert kinds(log) == []
            outcome = await service.request_change(
                "checkout", "failover", 5, "why", confirm="checkout"
            )
    assert outcome.ok
    assert kinds(log) == ["control_requested", "control_applied"]


async def test_revert_undoes_the_last_applied_change_as_its_own_change(
    log: IncidentLog,
) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        service = make_service(log, [http_control(server)])
        async with service:
            await service.request_change("checkout", "load_shed", 40, "first")
            second = await service.request_change("checkout", "load_shed", 60, "more")
            server.mode = "error"
            await service.request_change("checkout", "load_shed", 90, "fails")
            server.mode = "ok"
            outcome = await service.revert("checkout", "load_shed", "too much")
            with pytest.raises(ControlError, match="type the service name"):
                danger = service.spec("checkout", "load_shed").model_copy(
                    update={"dangerous": True}
                )
                service._check_confirm(danger, None)
    assert outcome.ok and outcome.value == 40 and server.values["shed"] == 40
    requests = [e for e in log.read() if isinstance(e, ev.ControlRequested)]
    revert = requests[-1]
    assert revert.revert_of == second.request_id
    assert (revert.from_value, revert.to_value, revert.reason) == (60, 40, "too much")


async def test_auto_revert_fires_unless_extended_and_is_logged(log: IncidentLog) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        service = make_service(log, [http_control(server)], state=lambda: fold(log.read()))
        async with service:
            change = await service.request_change(
                "checkout", "load_shed", 40, "for a bit", auto_revert_s=0.4
            )
            until = await service.extend("checkout", "load_shed", 0.4, "need longer")
            view = fold(log.read()).control("checkout", "load_shed")
            assert view is not None and view.auto_revert_at == ev.format_ts(until)
            await asyncio.sleep(0.55)
            assert server.values["shed"] == 40, "reverted before the extended deadline"
            for _ in range(100):
                if server.values["shed"] == 0 and "control_applied" in kinds(log)[-1:]:
                    break
                await asyncio.sleep(0.05)
    assert server.values["shed"] == 0
    events = list(log.read())
    assert [e.kind for e in events if e.kind != "control_effect"] == [
        "control_requested",
        "control_applied",
        "control_auto_revert_extended",
        "control_requested",
        "control_applied",
    ]
    revert = [e for e in events if isinstance(e, ev.ControlRequested)][-1]
    assert revert.revert_of == change.request_id and revert.actor == AUTO_REVERT_ACTOR
    assert "automatic revert" in revert.reason and "ana@host" in revert.reason
    view = fold(events).control("checkout", "load_shed")
    assert view is not None and (view.value, view.auto_revert_at) == (0, "")


async def test_a_later_change_cancels_a_pending_auto_revert(log: IncidentLog) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        service = make_service(log, [http_control(server)], state=lambda: fold(log.read()))
        async with service:
            await service.request_change("checkout", "load_shed", 40, "a", auto_revert_s=0.2)
            await service.request_change("checkout", "load_shed", 70, "keep this")
            await asyncio.sleep(0.4)
    assert server.values["shed"] == 70
    assert kinds(log).count("control_requested") == 2


async def test_effect_records_probe_readings_before_and_after(log: IncidentLog) -> None:
    readings = {"state": ev.ProbeState.DOWN}

    def read_probes(service: str) -> list[ev.ProbeSample]:
        return [ev.ProbeSample(target=f"{service}-http", state=readings["state"], ok=0, count=1)]

    async with flag_server(TOKEN, shed=0) as server:
        service = make_service(log, [http_control(server)], readings=read_probes)
        async with service:
            await service.request_change("checkout", "load_shed", 40, "shed")
            readings["state"] = ev.ProbeState.UP
            await service.wait_for_effects()
    effect = list(log.read())[-1]
    assert isinstance(effect, ev.ControlEffect)
    assert [s.state for s in effect.before] == ["down"]
    assert [s.state for s in effect.after] == ["up"]
    assert effect.after_s == pytest.approx(0.05)


# -- argv controls ---------------------------------------------------------------------------


async def test_argv_control_passes_a_hostile_value_as_one_plain_argument(
    log: IncidentLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "argv.txt"
    store.write_text(repr(["safe"]))
    write = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(repr(sys.argv[2:]))"
    read = (
        "import ast, sys, pathlib; "
        "print(ast.literal_eval(pathlib.Path(sys.argv[1]).read_text())[0])"
    )
    hostile = "; rm -rf /"
    config = ControlConfig.model_validate(
        {
            "service": "checkout",
            "control": "mode",
            "kind": "choice",
            "choices": ["safe", hostile],
            "apply": {"argv": [sys.executable, "-c", write, str(store), "{value}", "{reason}"]},
            "read": {"argv": [sys.executable, "-c", read, str(store)]},
        }
    )
    service = ControlService.from_config([config], log.append, actor="ana@host", effect_after=0)
    async with service:
        outcome = await service.request_change(
            "checkout", "mode", hostile, "$(touch pwned) && rm -rf ~"
        )
    assert outcome.ok, outcome.error
    assert ast.literal_eval(store.read_text()) == [hostile, "$(touch pwned) && rm -rf ~"]
    assert not (tmp_path / "pwned").exists()
    assert outcome.value == hostile


async def test_argv_control_failures_are_one_line(log: IncidentLog, tmp_path: Path) -> None:
    fail = "import sys; print('flag store\\nunavailable', file=sys.stderr); sys.exit(3)"
    hang = "import time; time.sleep(30)"
    configs = [
        ControlConfig.model_validate(
            {
                "service": "checkout",
                "control": name,
                "kind": "toggle",
                "timeout": "0.5s",
                "apply": {"argv": argv},
                "read": {"argv": [sys.executable, "-c", "print('off')"]},
            }
        )
        for name, argv in [
            ("failing", [sys.executable, "-c", fail, "{value}"]),
            ("hanging", [sys.executable, "-c", hang, "{value}"]),
            ("missing", [str(tmp_path / "no-such-program"), "{value}"]),
        ]
    ]
    service = ControlService.from_config(configs, log.append, actor="ana@host", effect_after=0)
    async with service:
        failing = await service.request_change("checkout", "failing", True, "x")
        hanging = await service.request_change("checkout", "hanging", True, "x")
        missing = await service.request_change("checkout", "missing", True, "x")
    assert failing.error == "python3 exited 3: flag store unavailable".replace(
        "python3", Path(sys.executable).name
    )
    assert hanging.error.startswith("timed out after 0.5s")
    assert missing.error == f"command not found: {tmp_path / 'no-such-program'}"
    assert failing.value is False and hanging.value is False


def test_controls_section_of_warroom_toml(tmp_path: Path) -> None:
    path = tmp_path / "warroom.toml"
    entry = """
[[controls]]
service = "checkout"
control = "load_shed"
kind = "level"
dangerous = true
apply = { url = "https://flags.example/shed", headers = { Authorization = "Bearer ${T}" } }
read = { url = "https://flags.example/shed", field = "flag.value" }
"""
    path.write_text(entry)
    (control,) = load_config(path).controls
    assert (control.service, control.control, control.dangerous) == ("checkout", "load_shed", True)
    assert control.apply.body == {"value": "{value}"}
    path.write_text(entry + entry)
    with pytest.raises(WarroomError, match=r"controls\[1\].control: duplicate control checkout/"):
        load_config(path)
    spliced = 'apply = { argv = ["/bin/setflag", "--v={value}"] }'
    path.write_text(entry.replace(entry.splitlines()[6], spliced))
    with pytest.raises(WarroomError, match=r"controls\[0\].apply.argv: argv\[1\]: \{value\} must"):
        load_config(path)


async def test_a_restarted_console_rearms_a_pending_auto_revert(log: IncidentLog) -> None:
    async with flag_server(TOKEN, shed=0) as server:
        first = make_service(log, [http_control(server)], state=lambda: fold(log.read()))
        async with first:
            change = await first.request_change(
                "checkout", "load_shed", 40, "for a bit", auto_revert_s=0.3
            )
        # The console went away before the deadline; a new one reads the log and re-arms it.
        assert server.values["shed"] == 40
        second = make_service(log, [http_control(server)], state=lambda: fold(log.read()))
        async with second:
            assert second.resume() == 1
            for _ in range(60):
                if server.values["shed"] == 0 and kinds(log)[-1:] == ["control_applied"]:
                    break
                await asyncio.sleep(0.05)
    revert = [e for e in log.read() if isinstance(e, ev.ControlRequested)][-1]
    assert revert.revert_of == change.request_id and server.values["shed"] == 0


@pytest.mark.slow
async def test_a_hanging_service_does_not_keep_the_request_off_the_log(log: IncidentLog) -> None:
    async with flag_server(TOKEN, shed=10) as server:
        server.mode = "hang_all"
        service = make_service(log, [http_control(server)], pre_read_timeout=0.1)
        async with service:
            task = asyncio.create_task(service.request_change("checkout", "load_shed", 5, "x"))
            await asyncio.sleep(0.3)
            assert kinds(log) == ["control_requested"]  # on disk while the call still hangs
            outcome = await task
    assert outcome.error.startswith("timed out after 0.5s") and outcome.value is None
    assert kinds(log) == ["control_requested", "control_failed"]


async def test_a_needs_second_change_is_not_called_until_confirmed_and_fails_if_never(
    log: IncidentLog,
) -> None:
    confirmed: set[str] = set()
    async with flag_server(TOKEN, shed=0) as server:
        lever = http_control(server, needs_second=True)
        service = make_service(
            log, [lever], may_apply=lambda rid: rid in confirmed, second_timeout=0.3
        )
        async with service:
            change = asyncio.create_task(service.request_change("checkout", "load_shed", 40, "x"))
            await asyncio.sleep(0.15)
            assert not change.done() and server.posts == []  # held: the service is not called
            requested = next(e for e in log.read() if isinstance(e, ev.ControlRequested))
            assert requested.needs_second
            confirmed.add(requested.request_id)
            assert (await change).ok and len(server.posts) == 1
            # Nobody confirms this one: logged as failed, never applied.
            outcome = await service.request_change("checkout", "load_shed", 50, "y")
    assert not outcome.ok and "no second responder confirmed" in outcome.error
    assert len(server.posts) == 1
    assert kinds(log)[-1] == "control_failed"
