#!/usr/bin/env python3
"""Drive one HAProxy server through the runtime API (stats socket), as a warroom lever.

    haproxy-runtime.py --socket /run/haproxy/admin.sock set-weight app/web1 50
    haproxy-runtime.py --socket /run/haproxy/admin.sock get-weight app/web1      -> 50
    haproxy-runtime.py --socket ... set-state app/web1 drain|ready|maint
    haproxy-runtime.py --socket ... get-state app/web1                           -> drain
    haproxy-runtime.py --socket ... set-maxconn app/web1 200 / get-maxconn app/web1

`--socket` is a Unix socket path or `tcp:HOST:PORT` (a `stats socket ipv4@...` line). Each
argument is checked before it goes into the one-line command, so a value can never add a
second command. Weights are percentages of the server's initial weight, which is what
`set weight ... N%` means to HAProxy. Standard library only: copy it anywhere.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import socket
import sys

NAME = re.compile(r"^[A-Za-z0-9_.:-]+/[A-Za-z0-9_.:-]+$")
STATES = {"ready", "drain", "maint"}


def ask(where: str, command: str, timeout: float = 5.0) -> str:
    if where.startswith("tcp:"):
        host, _, port = where[4:].rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(where)
    with sock:
        sock.sendall(command.encode("ascii") + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _row(where: str, server: str) -> dict[str, str]:
    backend, name = server.split("/", 1)
    text = ask(where, "show stat").lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("pxname") == backend and row.get("svname") == name:
            return row
    raise SystemExit(f"no server {server} in show stat")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument(
        "command",
        choices=[
            "set-weight",
            "get-weight",
            "set-state",
            "get-state",
            "set-maxconn",
            "get-maxconn",
        ],
    )
    parser.add_argument("server", help="BACKEND/SERVER")
    parser.add_argument("value", nargs="?")
    args = parser.parse_args(argv)
    if not NAME.match(args.server):
        raise SystemExit(f"not BACKEND/SERVER: {args.server!r}")
    verb = args.command.split("-", 1)[0]
    if verb == "set" and args.value is None:
        raise SystemExit(f"{args.command} needs a value")
    if args.command == "set-weight":
        if not re.fullmatch(r"\d{1,3}", args.value) or int(args.value) > 100:
            raise SystemExit(f"weight is 0..100 (% of the initial weight): {args.value!r}")
        command = f"set weight {args.server} {int(args.value)}%"
    elif args.command == "set-state":
        if args.value not in STATES:
            raise SystemExit(f"state is one of {', '.join(sorted(STATES))}: {args.value!r}")
        command = f"set server {args.server} state {args.value}"
    elif args.command == "set-maxconn":
        if not re.fullmatch(r"\d{1,7}", args.value):
            raise SystemExit(f"maxconn is a whole number: {args.value!r}")
        command = f"set maxconn server {args.server} {int(args.value)}"
    elif args.command == "get-weight":
        answer = ask(args.socket, f"get weight {args.server}").strip()
        match = re.fullmatch(r"(\d+) \(initial (\d+)\)", answer)
        if not match:
            raise SystemExit(f"haproxy: {answer}")
        current, initial = int(match[1]), int(match[2])
        print(round(100 * current / initial) if initial else 0)
        return 0
    elif args.command == "get-state":
        status = _row(args.socket, args.server)["status"].upper()
        print("maint" if "MAINT" in status else "drain" if "DRAIN" in status else "ready")
        return 0
    else:
        print(_row(args.socket, args.server)["slim"] or "none")
        return 0
    answer = ask(args.socket, command).strip()
    if answer:  # the runtime API answers a successful set with nothing
        print(f"haproxy: {answer}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
