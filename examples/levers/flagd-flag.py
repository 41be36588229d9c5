#!/usr/bin/env python3
"""Flip a boolean flag in a flagd flag file (which flagd watches), as a warroom lever.

    flagd-flag.py /etc/flagd/flags.json new-checkout set false   -> defaultVariant "off"
    flagd-flag.py /etc/flagd/flags.json new-checkout get         -> off

The file is rewritten atomically (write beside it, then rename), so flagd never reads half a
file; everything else in it is kept as it was. The flag needs `on` and `off` variants.
Standard library only: copy it anywhere.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

WORDS = {"true": "on", "on": "on", "false": "off", "off": "off"}


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[2] not in ("get", "set"):
        raise SystemExit("usage: flagd-flag.py FILE FLAG get | set true|false")
    path, flag, command = Path(argv[0]), argv[1], argv[2]
    document = json.loads(path.read_text())
    entry = document.get("flags", {}).get(flag)
    if not isinstance(entry, dict):
        raise SystemExit(f"no flag {flag!r} in {path}")
    if command == "get":
        print(entry.get("defaultVariant", ""))
        return 0
    if len(argv) != 4 or argv[3].lower() not in WORDS:
        raise SystemExit("set takes true or false")
    variant = WORDS[argv[3].lower()]
    if variant not in entry.get("variants", {}):
        raise SystemExit(f"flag {flag!r} has no {variant!r} variant")
    entry["defaultVariant"] = variant
    tmp = path.with_name(path.name + ".warroom-tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
