"""Dotted paths into decoded JSON (`a.b.0.c`), for probe conditions and lever read-backs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_field(data: Any, path: str) -> Any:
    """Walk `path` through `data`; KeyError naming the missing part when it isn't there."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            raise KeyError(f"no field {path!r} in the response (missing {part!r})")
    return current
