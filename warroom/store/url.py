"""Store addresses: a file path (the JSONL default) or `postgresql://…?incident=ID`.

Everything in the URL but `incident` goes to libpq untouched, so its usual environment
(`PGHOST`, `PGUSER`, `PGPASSWORD`…), `~/.pgpass`, `sslmode=` and a `host=` socket directory
work as they do for `psql`. A URL with neither host nor database (`postgresql:///?incident=ID`)
takes both from `$WARROOM_DB` when it is set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from warroom.errors import WarroomError

SCHEMES = ("postgresql://", "postgres://")
#: The team's database (`postgresql://…/db`, no incident): fills in a URL with no host or db.
BASE_ENV = "WARROOM_DB"
_INCIDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class StoreURLError(WarroomError):
    """A store URL that cannot be used; the message says which part is wrong."""


def is_url(text: str) -> bool:
    """True for a PostgreSQL URL, False for anything else (a log file path)."""
    return text.startswith(SCHEMES)


@dataclass(frozen=True)
class StoreURL:
    """A parsed `postgresql://` address: what libpq gets, the incident, a printable form."""

    conninfo: str
    incident: str | None
    #: The URL with any password replaced by `***`, for messages.
    display: str


def parse_url(text: str, need_incident: bool = True) -> StoreURL:
    """Split off `?incident=ID`; `StoreURLError` for a missing or malformed incident."""
    if not is_url(text):
        raise StoreURLError(f"{text}: not a postgresql:// URL")
    parts = urlsplit(text)
    query = parse_qsl(parts.query, keep_blank_values=True)
    base = os.environ.get(BASE_ENV, "")
    if not parts.netloc and parts.path in ("", "/") and is_url(base):
        # `postgresql:///?incident=ID`: the server and database the team set once.
        home = urlsplit(base)
        parts = home
        query = [*parse_qsl(home.query, keep_blank_values=True), *query]
    incidents = [value for key, value in query if key == "incident"]
    rest = [(key, value) for key, value in query if key != "incident"]
    netloc = parts.netloc
    shown_netloc = netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        if ":" in userinfo:
            shown_netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}"
    # Built by hand: urlunsplit drops the `//` of an empty host, which libpq needs.
    rest_query = urlencode(rest)
    conninfo = f"postgresql://{netloc}{parts.path}" + (f"?{rest_query}" if rest_query else "")
    shown_query = urlencode(query)
    display = f"postgresql://{shown_netloc}{parts.path}" + (f"?{shown_query}" if query else "")
    incident = incidents[-1] if incidents else None
    if len(incidents) > 1:
        raise StoreURLError(f"{display}: 'incident' given {len(incidents)} times")
    if incident is None:
        if need_incident:
            raise StoreURLError(f"{display}: add ?incident=ID (letters, digits, . _ -)")
    elif not _INCIDENT.fullmatch(incident):
        raise StoreURLError(
            f"{display}: incident {incident!r} must be 1-128 letters, digits, '.', '_' or '-'"
        )
    return StoreURL(conninfo=conninfo, incident=incident, display=display)
