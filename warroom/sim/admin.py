"""The fleet's admin API (aiohttp): clock, targets, event feed, controls and fault injection.

Reads are open (loopback only); every change needs `Authorization: Bearer <token>` from the
token file. A refused request changes nothing and says why in `{"error": "..."}`.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warroom.sim.model import ControlError, UnknownControl

if TYPE_CHECKING:
    from warroom.sim.server import SimServer

SIM_KEY: web.AppKey[SimServer] = web.AppKey("sim")
_MAX_BODY = 64 * 1024


class ControlRequest(BaseModel):
    """Body of `POST /controls/{service}/{control}`."""

    model_config = ConfigDict(extra="forbid")
    value: Any = Field(...)
    reason: str = Field(default="", max_length=2000)


class FaultRequest(BaseModel):
    """Body of `POST /faults`."""

    model_config = ConfigDict(extra="forbid")
    service: str
    fault: Literal["down", "slow", "error", "hang", "refuse", "recover", "dns_empty", "dns_restore"]
    site: str | None = None
    factor: float = Field(default=10.0, gt=0, le=1000)
    fraction: float = Field(default=1.0, ge=0, le=1)


class ClockRequest(BaseModel):
    """Body of `POST /clock`: pause/resume and change the speed."""

    model_config = ConfigDict(extra="forbid")
    paused: bool | None = None
    speed: float | None = Field(default=None, gt=0, le=1_000_000)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _authorised(request: web.Request) -> bool:
    sim = request.app[SIM_KEY]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), sim.token.encode())


async def _body(request: web.Request, model: type[BaseModel]) -> BaseModel | web.Response:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        return _error(413, "request body too large")
    raw = await request.read()
    if len(raw) > _MAX_BODY:
        return _error(413, "request body too large")
    try:
        data = orjson.loads(raw or b"null")
    except orjson.JSONDecodeError:
        return _error(400, "body must be JSON")
    if not isinstance(data, dict):
        return _error(422, "body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        return _error(422, f"{where}: {err['msg']}")


async def get_root(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].info())


async def get_targets(request: web.Request) -> web.Response:
    return _json(request.app[SIM_KEY].targets())


async def get_events(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    raw = request.query.get("after", "0")
    try:
        after = int(raw)
    except ValueError:
        return _error(422, f"after must be an integer, not {raw!r}")
    return _json({"events": sim.events(after), "sim_time": round(sim.model.time, 3)})


async def get_controls(request: web.Request) -> web.Response:
    return _json({"controls": request.app[SIM_KEY].model.controls()})


async def get_control(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    try:
        control = sim.model.control(request.match_info["service"], request.match_info["control"])
    except UnknownControl as exc:
        return _error(404, str(exc))
    return _json(control)


async def post_control(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    if not _authorised(request):
        return _error(401, "missing or wrong token (Authorization: Bearer <token from file>)")
    service, name = request.match_info["service"], request.match_info["control"]
    try:
        sim.model.control(service, name)
    except UnknownControl as exc:
        return _error(404, str(exc))
    body = await _body(request, ControlRequest)
    if isinstance(body, web.Response):
        return body
    assert isinstance(body, ControlRequest)
    try:
        result = sim.model.apply_control(service, name, body.value, reason=body.reason)
    except ControlError as exc:
        return _error(422, str(exc))
    sim.after_change()
    return _json(result)


async def post_fault(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    if not _authorised(request):
        return _error(401, "missing or wrong token (Authorization: Bearer <token from file>)")
    body = await _body(request, FaultRequest)
    if isinstance(body, web.Response):
        return body
    assert isinstance(body, FaultRequest)
    spec = sim.scenario.services.get(body.service)
    if spec is None:
        return _error(404, f"unknown service {body.service!r}")
    if body.site is not None and body.site not in spec.sites:
        return _error(422, f"{body.service!r} has no site {body.site!r}")
    try:
        sim.model.inject(
            body.service, body.fault, site=body.site, factor=body.factor, fraction=body.fraction
        )
    except ControlError as exc:
        return _error(422, str(exc))
    sim.model.note_fault(body.service, body.fault)
    sim.after_change()
    return _json(
        {"service": body.service, "fault": body.fault, "health": sim.model.health(body.service)}
    )


async def post_clock(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    if not _authorised(request):
        return _error(401, "missing or wrong token (Authorization: Bearer <token from file>)")
    body = await _body(request, ClockRequest)
    if isinstance(body, web.Response):
        return body
    assert isinstance(body, ClockRequest)
    if body.paused is not None:
        sim.paused = body.paused
    if body.speed is not None:
        sim.speed = body.speed
    return _json({"paused": sim.paused, "speed": sim.speed, "sim_time": round(sim.model.time, 3)})


async def get_metrics(request: web.Request) -> web.Response:
    model = request.app[SIM_KEY].model
    return _json({"services": [model.metrics(name) for name in model.services]})


async def get_scrape_targets(request: web.Request) -> web.Response:
    """For Prometheus's `http_sd_configs`: the service ports, labelled by service."""
    return _json(request.app[SIM_KEY].scrape_targets())


def build_app(sim: SimServer) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY)
    app[SIM_KEY] = sim
    app.router.add_get("/", get_root)
    app.router.add_get("/targets", get_targets)
    app.router.add_get("/events", get_events)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/prometheus/targets", get_scrape_targets)
    app.router.add_get("/controls", get_controls)
    app.router.add_get("/controls/{service}/{control}", get_control)
    app.router.add_post("/controls/{service}/{control}", post_control)
    app.router.add_post("/faults", post_fault)
    app.router.add_post("/clock", post_clock)
    return app


async def start_admin(sim: SimServer, port: int) -> tuple[web.AppRunner, int]:
    """Start the admin API on 127.0.0.1:`port` (0 = any); return the runner and the port."""
    runner = web.AppRunner(build_app(sim), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])
