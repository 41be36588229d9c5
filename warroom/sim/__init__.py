"""The simulated fleet: a seeded model of services and outages, served over loopback.

- `model`: pure dynamics stepped in ticks (`Fleet.step(dt)`, `Fleet.apply_control(...)`,
  `Fleet.inject(service, fault)`); no I/O, no clock, same seed + inputs -> same trace.
- `scenario`: TOML scenarios validated with pydantic; shipped ones live in `scenarios/`.
  `scale-N` (e.g. `scale-1000`) generates a fleet of N services for load tests.
- `server`: one 127.0.0.1 port per service (`/health`, `/metrics`), DNS, admin API; and
  `running_fleet(...)`, an async context manager that runs a fleet on the current loop.
- `dns`, `admin`: the loopback DNS server and the admin HTTP API (see CONTRACTS.md).
- `cli`: `warroom sim serve [--scenario NAME|FILE|scale-N] [--speed X] [--seed N]`,
  `warroom sim list` and `warroom sim run SCENARIO [--levers FILE] [--seed N] [--until D] [--json]`.
- `runner`: headless drills (`run_drill`) with lever timelines (`scenarios/levers/*.toml`):
  per-service first degraded / down / recovered times, compared with the scenario's history.

In tests: `async with running_fleet("tutorial", speed=1.0) as fleet:` gives
`fleet.admin_url`, `fleet.token`, `fleet.token_path`, `fleet.dns_address`,
`fleet.service_ports` and `fleet.model` (the live `Fleet`); or use the `sim_fleet` fixture.
"""
