"""How a lever's value reads, everywhere warroom shows one: panel, log, report, errors.

Pure and dependency-free (the event models import it for their summaries): `on`/`off` for
toggles, `40 %` for levels, `250 req/s` or `no limit` for rates, a choice's own name, and `?`
for a value nobody could read.
"""

from __future__ import annotations

#: A rate control's "no limit" (JSON null on the wire). A string, so that a log can tell it
#: apart from an unknown value (None) and a revert can restore it.
NO_LIMIT = "none"


def tidy_number(number: float) -> int | float:
    """`40.0` as `40`, anything else unchanged (so `40` and `40.0` read alike)."""
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def value_words(value: bool | int | float | str | None, unit: str = "") -> str:
    """A control value as a person reads it: `on`, `off`, `40 %`, `250 req/s`, `no limit`,
    `replica`, `?`.

    `unit` is the lever's unit (`%` for a level, `req/s` for a rate, or its configured one);
    a value without a unit is a toggle's or a choice's. A rate's `NO_LIMIT` reads `no limit`
    only with a unit, so a choice that happens to be named `none` keeps its name.
    """
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        number = f"{tidy_number(float(value)):g}"
        return f"{number} {unit}" if unit else number
    if value == NO_LIMIT and unit:
        return "no limit"
    return value
