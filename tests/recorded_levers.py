"""Recorded-protocol stand-ins for lever servers that cannot be installed here.

Each answers what the real one answers for the calls the recipes in `examples/levers/`
make, as documented by its project (request shape, status codes, error bodies):

- Envoy's admin API: `POST /runtime_modify?k=v` -> `OK`, `GET /runtime` -> layered JSON
  (https://www.envoyproxy.io/docs/envoy/latest/operations/admin).
- LaunchDarkly's REST API: `PATCH /api/v2/flags/{project}/{flag}` with a JSON Patch, and
  `GET` of the same flag (https://apidocs.launchdarkly.com/tag/Feature-flags).
- `kubectl` (`KUBECTL_SOURCE`, run as a program): `get -o jsonpath=`, `scale` with
  `--current-replicas`, `rollout undo`, with kubectl's own messages and exit codes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

LD_TOKEN = "api-0123456789-test"


def envoy_admin() -> web.Application:
    runtime: dict[str, str] = {}

    async def modify(request: web.Request) -> web.Response:
        if not request.query:
            return web.Response(
                status=400, text="usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n"
            )
        runtime.update(request.query)
        return web.Response(text="OK\n")

    async def show(request: web.Request) -> web.Response:
        entries = {
            key: {"final_value": value, "layer_values": ["", value]}
            for key, value in runtime.items()
        }
        return web.json_response({"layers": ["static_layer", "admin"], "entries": entries})

    app = web.Application()
    app.router.add_post("/runtime_modify", modify)
    app.router.add_get("/runtime", show)
    return app


def launchdarkly() -> web.Application:
    flag: dict[str, Any] = {
        "key": "recommendations",
        "kind": "boolean",
        "environments": {"production": {"on": True, "version": 1}},
    }

    def _unauthorised(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != LD_TOKEN:
            return web.json_response(
                {"code": "unauthorized", "message": "Invalid account ID header"}, status=401
            )
        return None

    async def get(request: web.Request) -> web.Response:
        return _unauthorised(request) or web.json_response(flag)

    async def patch(request: web.Request) -> web.Response:
        if (denied := _unauthorised(request)) is not None:
            return denied
        ops = await request.json()
        for op in ops if isinstance(ops, list) else [None]:
            if not (
                isinstance(op, dict)
                and op.get("op") == "replace"
                and op.get("path") == "/environments/production/on"
                and isinstance(op.get("value"), bool)
            ):
                return web.json_response(
                    {"code": "invalid_request", "message": "Invalid patch"}, status=400
                )
            env = flag["environments"]["production"]
            env["on"] = op["value"]
            env["version"] += 1
        return web.json_response(flag)

    app = web.Application()
    app.router.add_get("/api/v2/flags/default/recommendations", get)
    app.router.add_patch("/api/v2/flags/default/recommendations", patch)
    return app


KUBECTL_SOURCE = r"""
import json, os, sys

state_path = os.environ["KUBECTL_STATE"]
state = json.load(open(state_path))
args = sys.argv[1:]
with open(state_path + ".calls", "a") as calls:
    calls.write(json.dumps(args) + "\n")


def save():
    json.dump(state, open(state_path, "w"))


def option(name):
    return args[args.index(name) + 1] if name in args else None


if args[:2] == ["get", "deployment/web"] and option("-n") == "shop":
    path = option("-o")
    if path == "jsonpath={.spec.replicas}":
        print(state["replicas"], end="")
    elif path == "jsonpath={.spec.template.metadata.labels.version}":
        print(state["history"][-1], end="")
    else:
        sys.exit("error: unsupported output in the recorded kubectl")
elif args[:2] == ["scale", "deployment/web"] and option("-n") == "shop":
    expected = option("--current-replicas")
    if expected is not None and int(expected) != state["replicas"]:
        print(f"error: Expected replicas to be {expected}, was {state['replicas']}",
              file=sys.stderr)
        sys.exit(1)
    state["replicas"] = int(option("--replicas"))
    save()
    print("deployment.apps/web scaled")
elif args[:3] == ["rollout", "undo", "deployment/web"] and option("-n") == "shop":
    if len(state["history"]) < 2:
        print("error: no rollout history found for deployment \"web\"", file=sys.stderr)
        sys.exit(1)
    # An undo re-deploys the previous revision's template as a new revision.
    state["history"].append(state["history"][-2])
    save()
    print("deployment.apps/web rolled back")
else:
    print(f"error: the recorded kubectl does not know {args}", file=sys.stderr)
    sys.exit(1)
"""
