"""The lever recipes in `examples/levers/`, each applied and read back for real.

HAProxy and nginx are Debian's, started by the tests. Kubernetes (kubectl), Envoy and
LaunchDarkly cannot be installed here: they are tested against the recorded-protocol
stand-ins in `tests/recorded_levers.py`. flagd's recipe is a file, tested as one.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.prom_servers import find_binary, free_port
from tests.recorded_levers import KUBECTL_SOURCE, LD_TOKEN, envoy_admin, launchdarkly
from warroom.config import load_config
from warroom.controls.client import (
    Applier,
    CallContext,
    ControlCallError,
    appliers_from_config,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "levers"


def recipe(name: str, replace: dict[str, str], tmp_path: Path) -> Path:
    """An example config with its addresses pointed at the test's servers."""
    text = (EXAMPLES / name).read_text()
    text = text.replace('"examples/levers/', f'"{EXAMPLES}/')
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def _appliers(path: Path, client: httpx.AsyncClient, env: dict[str, str] | None = None):
    return {
        a.spec.control: a for a in appliers_from_config(load_config(path).controls, client, env)
    }


async def _set(applier: Applier, value: Any) -> str:
    return await applier.apply(CallContext(value, reason="drill", actor="tester"))


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_recipe_is_a_valid_config(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert config.controls


# -- HAProxy (Debian's) --------------------------------------------------------------------


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Path]:
    binary = find_binary("haproxy")
    sock = tmp_path / "admin.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"""
global
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:{free_port()}
    default_backend app
backend app
    server web1 127.0.0.1:{free_port()} weight 40
    server web2 127.0.0.1:{free_port()} weight 40
"""
    )
    process = subprocess.Popen([binary, "-f", str(config), "-db"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "haproxy did not open its socket"
            time.sleep(0.05)
        yield sock
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow  # several helper processes, each a Python start-up
async def test_haproxy_runtime_api_recipe(haproxy: Path, tmp_path: Path, client) -> None:
    path = recipe("haproxy.toml", {"/run/haproxy/admin.sock": str(haproxy)}, tmp_path)
    levers = _appliers(path, client)
    weight, state, maxconn = levers["web1_weight"], levers["web1_state"], levers["web1_maxconn"]
    assert await weight.read() == 100
    await _set(weight, 25)
    assert await weight.read() == 25
    assert await state.read() == "ready"
    await _set(state, "drain")
    assert await state.read() == "drain"
    await _set(state, "ready")
    assert await state.read() == "ready"
    await _set(maxconn, 200)
    assert await maxconn.read() == 200
    with pytest.raises(ControlCallError, match=r"weight is 0\.\.100"):
        await _set(weight, 250)  # coerce_value stops this first in the console
    assert await weight.read() == 25


# -- nginx (Debian's) ----------------------------------------------------------------------


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[list[str], Path, str]]:
    binary = find_binary("nginx")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    include = prefix / "limit.conf"
    include.write_text("limit_req_zone $binary_remote_addr zone=checkout:10m rate=1000r/s;\n")
    (prefix / "html").mkdir()
    (prefix / "html" / "index.html").write_text("ok\n")
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {include};
    server {{
        listen 127.0.0.1:{port};
        # Not `return`: it answers in the rewrite phase, before limit_req runs.
        location / {{ limit_req zone=checkout nodelay; root {prefix}/html; }}
    }}
}}
"""
    )
    command = [binary, "-p", str(prefix), "-c", str(conf)]
    process = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        yield command, include, url
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow  # several helper processes, each a Python start-up
async def test_nginx_limit_req_recipe_reloads_a_checked_config(nginx, tmp_path, client) -> None:
    command, include, url = nginx
    path = recipe(
        "nginx.toml",
        {
            '"/etc/nginx/conf.d/warroom-limit.conf", "--zone", "checkout", "set"': (
                f'"{include}", "--zone", "checkout", '
                + ", ".join(f'"--nginx={part}"' for part in command)
                + ', "set"'
            ),
            '"/etc/nginx/conf.d/warroom-limit.conf"': f'"{include}"',
        },
        tmp_path,
    )
    lever = _appliers(path, client)["rate_limit"]
    assert await lever.read() == 1000
    await _set(lever, 1)
    assert await lever.read() == 1

    async def limited() -> bool:
        codes = [(await client.get(url)).status_code for _ in range(5)]
        return 503 in codes

    deadline = time.monotonic() + 10
    while not await limited():  # the reloaded workers take over within moments
        assert time.monotonic() < deadline, "nginx never applied the new limit"
        await asyncio.sleep(0.2)


# -- kubectl (recorded protocol) -------------------------------------------------------------


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "kubectl"
    program.write_text(f"#!{sys.executable}\n{KUBECTL_SOURCE}")
    program.chmod(0o755)
    state = tmp_path / "cluster.json"
    state.write_text(json.dumps({"replicas": 3, "history": ["1.4.2", "1.5.0"]}))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECTL_STATE", str(state))
    return state


@pytest.mark.slow  # several helper processes, each a Python start-up
async def test_kubectl_scale_is_a_compare_and_set(kubectl: Path, client) -> None:
    lever = _appliers(EXAMPLES / "kubernetes.toml", client)["replicas"]
    assert await lever.read() == 3
    await _set(lever, 5)  # from_value read back first: --current-replicas 3
    assert await lever.read() == 5
    with pytest.raises(ControlCallError, match="Expected replicas to be 3, was 5"):
        await lever.apply(CallContext(8, reason="stale panel", from_value=3))
    assert await lever.read() == 5
    calls = [json.loads(line) for line in Path(f"{kubectl}.calls").read_text().splitlines()]
    assert calls[2][-4:] == ["--current-replicas", "3", "--replicas", "5"]


@pytest.mark.slow  # several helper processes, each a Python start-up
async def test_kubectl_rollout_undo_reads_back_the_version(kubectl: Path, client) -> None:
    lever = _appliers(EXAMPLES / "kubernetes.toml", client)["version"]
    assert await lever.read() == "1.5.0"
    await _set(lever, "1.4.2")
    assert await lever.read() == "1.4.2"
    await _set(lever, "1.5.0")  # undo of the undo: forward again
    assert await lever.read() == "1.5.0"


# -- Envoy and LaunchDarkly (recorded protocol) ------------------------------------------------


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_envoy_runtime_modify_recipe(tmp_path: Path, client) -> None:
    runner, url = await _serve(envoy_admin())
    try:
        path = recipe("envoy.toml", {"http://127.0.0.1:9901": url}, tmp_path)
        lever = _appliers(path, client)["shed"]
        with pytest.raises(ControlCallError, match="no field"):
            await lever.read()  # not set yet: Envoy has no such key
        assert (await _set(lever, 20)).startswith("HTTP 200")
        assert await lever.read() == 20
    finally:
        await runner.cleanup()


async def test_launchdarkly_toggle_recipe(tmp_path: Path, client) -> None:
    runner, url = await _serve(launchdarkly())
    try:
        path = recipe("launchdarkly.toml", {"https://app.launchdarkly.com": url}, tmp_path)
        lever = _appliers(path, client, {"LD_API_TOKEN": LD_TOKEN})["recommendations"]
        assert await lever.read() is True
        await _set(lever, False)
        assert await lever.read() is False
        wrong = _appliers(path, client, {"LD_API_TOKEN": "api-wrong-token"})["recommendations"]
        with pytest.raises(ControlCallError, match=r"HTTP 401 \(check the token\)") as info:
            await _set(wrong, True)
        assert "api-wrong-token" not in str(info.value)
        assert await lever.read() is False
    finally:
        await runner.cleanup()


# -- flagd (a file) ------------------------------------------------------------------------


@pytest.mark.slow  # several helper processes, each a Python start-up
async def test_flagd_flag_file_recipe(tmp_path: Path, client) -> None:
    flags = tmp_path / "flags.json"
    document: dict[str, Any] = {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            "new-checkout": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            },
            "other": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
        },
    }
    flags.write_text(json.dumps(document))
    path = recipe("flagd.toml", {"/etc/flagd/flags.json": str(flags)}, tmp_path)
    lever = _appliers(path, client)["new_checkout"]
    assert await lever.read() is True
    await _set(lever, False)
    assert await lever.read() is False
    after = json.loads(flags.read_text())
    assert after["flags"]["new-checkout"]["defaultVariant"] == "off"
    assert after["flags"]["other"] == document["flags"]["other"]
    assert after["$schema"] == document["$schema"]
