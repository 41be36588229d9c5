"""warroom.toml: defaults, one-line targets, and one-line errors naming the key path or line."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom.config import (
    config_from_sim,
    find_default_config,
    load_config,
    parse_config,
    split_host_port,
)
from warroom.errors import WarroomError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warroom.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(WarroomError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}")


def test_one_line_target_gets_sensible_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[targets]]\nname = "web"\nhttp = "http://h/health"\n'))
    (target,) = config.resolved_targets()
    assert (target.kind, target.service, target.address) == ("http", "web", "http://h/health")
    assert (target.interval, target.timeout) == (10.0, 2.0)
    assert (target.failure_threshold, target.success_threshold) == (2, 2)
    assert target.keepalive is False
    assert target.expect.status is None and target.expect.resolves is True
    assert config.incident.status_update_interval == 1800.0


def test_defaults_apply_and_targets_override(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
runbook_dirs = ["rb", "/abs/rb"]
[incident]
status_update_interval = "15m"
[defaults]
interval = "500ms"
timeout = 1
failure_threshold = 3
degraded_latency = "250ms"
keepalive = true
[[targets]]
name = "db"
tcp = "127.0.0.1:5432"
[[targets]]
name = "api"
service = "checkout"
http = "https://api/health"
interval = "1m30s"
success_threshold = 1
keepalive = false
tags = ["customer"]
expect = { status = [200, 204], body_contains = "ok", json = { "db.ok" = true }, max_latency = 2 }
[[targets]]
name = "dyn-dns"
dns = "dynamodb.sim"
nameserver = "127.0.0.1:5353"
expect = { contains_address = "10.0.0.1" }
""",
        )
    )
    db, api, dyn = config.resolved_targets()
    assert (db.kind, db.interval, db.timeout, db.failure_threshold) == ("tcp", 0.5, 1.0, 3)
    assert db.degraded_latency == 0.25 and db.keepalive is True
    assert (api.service, api.interval, api.success_threshold, api.keepalive) == (
        "checkout",
        90.0,
        1,
        False,
    )
    assert api.tags == ("customer",)
    assert api.expect.status == [200, 204] and api.expect.json_fields == {"db.ok": True}
    assert api.expect.max_latency == 2.0
    assert (dyn.kind, dyn.nameserver, dyn.expect.contains_address) == (
        "dns",
        "127.0.0.1:5353",
        "10.0.0.1",
    )
    assert config.incident.status_update_interval == 900.0
    assert config.runbook_dirs == [str(tmp_path / "rb"), "/abs/rb"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[targets]]\nname="a"\nhttp="http://h"\n[[targets]]\nname="b"\ntcp="h:1"\n'
            '[[targets]]\nname="c"\nhttp="http://h"\ntimeout="2x"\n',
            ": targets[2].timeout: not a duration: '2x' (use e.g. 500ms, 2s)",
        ),
        (
            '[[targets]]\nname="a"\nhttp="http://h"\ntimout="2s"\n',
            ": targets[0].timout: unknown key (did you mean 'timeout'?)",
        ),
        (
            '[[targets]]\nname="a"\nhttp="http://h"\nexpect={stauts=[200]}\n',
            ": targets[0].expect.stauts: unknown key (did you mean 'status'?)",
        ),
        (
            '[defaults]\nintervall="1s"\n',
            ": defaults.intervall: unknown key (did you mean 'interval'?)",
        ),
        ('[[targts]]\nname="a"\n', ": targts: unknown key (did you mean 'targets'?)"),
        (
            '[[targets]]\nname="a"\nhttp="http://x"\n[[targets]]\nname="a"\ntcp="h:1"\n',
            ": targets[1].name: duplicate target name 'a' (also targets[0])",
        ),
        ('[[targets]]\nname="a"\n', ": targets[0]: give exactly one of http, tcp, dns, promql"),
        (
            '[[targets]]\nname="a"\nhttp="http://x"\ntcp="h:1"\n',
            ": targets[0]: give exactly one of http, tcp, dns, promql (found http, tcp)",
        ),
        ('[[targets]]\nhttp="http://x"\n', ": targets[0].name: required key is missing"),
        (
            '[[targets]]\nname="a"\ntcp="h"\n',
            ": targets[0].tcp: missing port in 'h' (use host:port)",
        ),
        (
            '[[targets]]\nname="a"\nhttp="ftp://h"\n',
            ": targets[0].http: not an http(s) URL: 'ftp://h'",
        ),
        ('[[targets]]\nname="a"\nhttp="http://h"\ninterval=0\n', ": targets[0].interval: must be"),
        (
            '[[targets]]\nname="a"\nhttp="http://h"\nfailure_threshold=0\n',
            ": targets[0].failure_threshold: input should be greater than or equal to 1, got 0",
        ),
        (
            '[[targets]]\nname="a"\ntcp="h:1"\nnameserver="127.0.0.1"\n',
            ": targets[0]: nameserver is only for dns targets",
        ),
        (
            '[[targets]]\nname="a"\ndns="x.sim"\nnameserver="ns.example:53"\n',
            ": targets[0].nameserver: nameserver must be an IP address: 'ns.example:53'",
        ),
        (
            '[incident]\nstatus_update_interval="soon"\n',
            ": incident.status_update_interval: not a duration: 'soon' (use e.g. 500ms, 2s)",
        ),
        ('runbook_dirs = "rb"\n', ": runbook_dirs: input should be a valid list, got 'rb'"),
    ],
)
def test_errors_name_the_key_path_and_what_is_wrong(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert error_of(tmp_path, text).startswith(expected)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[defaults]\ninterval = "1s"\ntimeout = \n')
    with pytest.raises(WarroomError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:3:")
    assert "TOML syntax error" in str(info.value)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WarroomError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_more_errors_are_counted(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[defaults]\ninterval="x"\ntimeout="y"\n')
    assert message.endswith("(and 1 more)")


def test_example_config_is_valid() -> None:
    config = load_config(REPO / "warroom.example.toml")
    assert {t.kind for t in config.resolved_targets()} == {"http", "tcp", "dns", "promql"}


def test_default_config_file_is_found_in_cwd(tmp_path: Path) -> None:
    assert find_default_config(tmp_path) is None
    write(tmp_path, "")
    assert find_default_config(tmp_path) == tmp_path / "warroom.toml"


def test_json_shape_from_the_sim_is_the_same_model() -> None:
    config = parse_config(
        {
            "defaults": {"interval": 0.5, "timeout": "300ms"},
            "targets": [
                {"name": "web", "http": "http://127.0.0.1:1/health"},
                {
                    "name": "web-dns",
                    "service": "web",
                    "dns": "web.sim",
                    "nameserver": "127.0.0.1:1",
                },
            ],
        },
        "http://127.0.0.1:1/targets",
    )
    web, dns = config.resolved_targets()
    assert (web.interval, web.timeout, dns.service) == (0.5, 0.3, "web")


def test_sim_that_is_not_listening_is_a_one_line_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WarroomError, match=rf"http://127.0.0.1:{port}/targets: "):
        config_from_sim(f"http://127.0.0.1:{port}", timeout=1.0)


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("h:80", None, ("h", 80)),
        ("[::1]:53", None, ("::1", 53)),
        ("10.0.0.1", 53, ("10.0.0.1", 53)),
    ],
)
def test_split_host_port(text: str, default: int | None, expected: tuple[str, int]) -> None:
    assert split_host_port(text, default) == expected
