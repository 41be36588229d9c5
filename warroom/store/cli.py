"""`warroom db init URL`, `warroom log export URL -o FILE`, `warroom log import FILE URL`."""

from __future__ import annotations

import argparse
import sys

from warroom.store.url import parse_url
from warroom.words import plural


def run_db_init(args: argparse.Namespace) -> int:
    """Create or upgrade the schema; say which version it is at."""
    from warroom.store.schema import init_schema

    url = parse_url(args.url, need_incident=False)
    before, after = init_schema(url.conninfo, grant_to=args.grant)
    if before == after:
        state = "already at"
    else:
        state = f"upgraded from v{before} to" if before else "created at"
    grant = f"; {args.grant} may read and append, never rewrite" if args.grant else ""
    print(f"{url.display}: warroom schema {state} v{after}{grant}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the shared incident as a JSONL file, then check its chain like `log verify`."""
    from warroom.log.verify import verify_log
    from warroom.store.transfer import export

    count = export(args.url, args.output)
    result = verify_log(args.output)
    if not result.ok:
        print(
            f"warroom: exported {plural(count, 'event')}, but: {result.message()}", file=sys.stderr
        )
        return 1
    print(f"{args.output}: {plural(count, 'event')}, chain intact, head {result.head[:12]}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Seed an empty shared incident from a verified JSONL file."""
    from warroom.store.transfer import import_file

    count = import_file(args.file, args.url)
    print(f"{parse_url(args.url).display}: imported {plural(count, 'event')}")
    return 0
