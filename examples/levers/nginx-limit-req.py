#!/usr/bin/env python3
"""Set an nginx `limit_req_zone` rate and reload nginx, as a warroom lever.

    nginx-limit-req.py --include /etc/nginx/conf.d/warroom-limit.conf --zone checkout set 200
    nginx-limit-req.py --include /etc/nginx/conf.d/warroom-limit.conf --zone checkout get  -> 200

`set` rewrites the include file (one `limit_req_zone` line, written atomically), checks the
whole configuration with `nginx -t`, and reloads; if the check fails the old file is put back
and nothing is reloaded. `get` prints the rate the file holds, which is what the running nginx
loaded once the reload succeeded. `--nginx` passes the binary and its options (e.g.
`-c /etc/nginx/nginx.conf`), repeated. Standard library only: copy it anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

LINE = "limit_req_zone $binary_remote_addr zone={zone}:10m rate={rate}r/s;\n"
PATTERN = re.compile(r"zone=(?P<zone>[A-Za-z0-9_]+):\S+ rate=(?P<rate>\d+)r/s;")


def current(include: Path, zone: str) -> int | None:
    try:
        text = include.read_text()
    except FileNotFoundError:
        return None
    for match in PATTERN.finditer(text):
        if match["zone"] == zone:
            return int(match["rate"])
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--include", required=True, type=Path)
    parser.add_argument("--zone", required=True)
    parser.add_argument("--nginx", action="append", default=None, help="binary, then options")
    parser.add_argument("command", choices=["set", "get"])
    parser.add_argument("rate", nargs="?")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", args.zone):
        raise SystemExit(f"not a zone name: {args.zone!r}")
    if args.command == "get":
        rate = current(args.include, args.zone)
        if rate is None:
            raise SystemExit(f"no zone {args.zone} in {args.include}")
        print(rate)
        return 0
    if args.rate is None or not re.fullmatch(r"\d{1,7}", args.rate) or int(args.rate) < 1:
        raise SystemExit(f"rate is a whole number of requests per second: {args.rate!r}")
    nginx = args.nginx or ["nginx"]
    old = args.include.read_bytes() if args.include.exists() else None
    tmp = args.include.with_name(args.include.name + ".warroom-tmp")
    tmp.write_text(LINE.format(zone=args.zone, rate=int(args.rate)))
    os.replace(tmp, args.include)
    check = subprocess.run([*nginx, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        if old is None:
            args.include.unlink()
        else:
            args.include.write_bytes(old)
        print(f"nginx -t failed, old limit kept: {check.stderr.strip()}", file=sys.stderr)
        return 1
    reload = subprocess.run([*nginx, "-s", "reload"], capture_output=True, text=True, timeout=30)
    if reload.returncode != 0:
        print(f"nginx -s reload failed: {reload.stderr.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
