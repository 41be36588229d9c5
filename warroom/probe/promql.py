"""The `promql` target kind: ask Prometheus an instant query and check a condition on it.

    [[targets]]
    name = "checkout-errors"
    promql = 'sum(rate(http_errors_total{service="checkout"}[1m]))'
    condition = "value < 0.01"

Conditions: `[all|any] value OP NUMBER` (OP one of < <= > >= == !=), joined with `and`, or
`empty` (the query must return nothing, as alert expressions such as `up == 0` do when all is
well). A value condition over a query that returns nothing fails with "no data": silence is
not health. The condition parser and the evaluation are pure; `check_promql` does the I/O.
"""

from __future__ import annotations

import asyncio
import math
import operator
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from warroom.config import TargetConfig
from warroom.probe.checks import (
    MAX_BODY,
    BodyTooLarge,
    ProbeResult,
    _read_bounded,
    _seconds,
    describe_error,
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_CLAUSE = re.compile(
    r"^(?:(?P<q>all|any)\s+)?values?\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<n>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf)$",
    re.IGNORECASE,
)


class ConditionSyntaxError(ValueError):
    """A promql condition that cannot be read; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Clause:
    quantifier: Literal["all", "any"]
    op: str
    number: float

    def holds(self, values: list[float]) -> bool:
        test = _OPS[self.op]
        results = (test(v, self.number) for v in values)
        return all(results) if self.quantifier == "all" else any(results)

    def __str__(self) -> str:
        return f"{self.quantifier} value {self.op} {self.number:g}"


@dataclass(frozen=True, slots=True)
class ValueCondition:
    """`empty`, or clauses that must all hold over the returned values."""

    empty: bool = False
    clauses: tuple[Clause, ...] = ()


def parse_value_condition(text: str) -> ValueCondition:
    """Parse `value < 0.01`, `all values >= 1 and value < 5`, `any value > 0`, or `empty`."""
    stripped = " ".join(text.split())
    if not stripped:
        raise ConditionSyntaxError("empty condition (e.g. 'value < 0.01' or 'empty')")
    if stripped.lower() in ("empty", "no data"):
        return ValueCondition(empty=True)
    clauses: list[Clause] = []
    for part in re.split(r"\s+and\s+", stripped, flags=re.IGNORECASE):
        match = _CLAUSE.match(part)
        if not match:
            raise ConditionSyntaxError(
                f"cannot read {part!r}: expected '[all|any] value OP NUMBER' "
                "(OP: < <= > >= == !=) or 'empty'"
            )
        quantifier = (match["q"] or "all").lower()
        clauses.append(Clause(quantifier, match["op"], float(match["n"])))  # type: ignore[arg-type]
    return ValueCondition(clauses=tuple(clauses))


def _number(raw: Any) -> float:
    if isinstance(raw, str):
        try:
            return float(raw)  # Prometheus writes "NaN", "+Inf", "-Inf", "0.25"
        except ValueError:
            pass
    raise ValueError(f"not a sample value: {str(raw)[:40]!r}")


def _series_values(document: Any) -> list[tuple[str, float]]:
    """(series label text, value) pairs of an instant query answer; ValueError if malformed."""
    if not isinstance(document, dict):
        raise ValueError("answer is not a JSON object")
    if document.get("status") != "success":
        error = str(document.get("error") or document.get("status") or "no status")
        raise ValueError(f"query failed: {' '.join(error.split())[:160]}")
    data = document.get("data")
    if not isinstance(data, dict):
        raise ValueError("answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        if not isinstance(result, list) or len(result) != 2:
            raise ValueError("malformed scalar")
        return [("scalar", _number(result[1]))]
    if kind != "vector":
        raise ValueError(f"expected an instant vector or scalar, got {str(kind)[:20]}")
    if not isinstance(result, list):
        raise ValueError("malformed vector")
    out: list[tuple[str, float]] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("value"), list):
            raise ValueError("malformed vector sample")
        metric = item.get("metric")
        if not isinstance(metric, dict):
            metric = {}
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
        value = item["value"]
        if len(value) != 2:
            raise ValueError("malformed vector sample")
        out.append((f"{{{labels}}}", _number(value[1])))
    return out


def _fmt(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def evaluate_promql(condition: ValueCondition, document: Any, latency_ms: float) -> ProbeResult:
    """Check a decoded `/api/v1/query` answer against the condition: one `ProbeResult`."""
    try:
        series = _series_values(document)
    except ValueError as exc:
        return ProbeResult(False, latency_ms, str(exc))
    if condition.empty:
        if not series:
            return ProbeResult(True, latency_ms, "no series (as expected)")
        first_labels, first_value = series[0]
        return ProbeResult(
            False, latency_ms, f"{len(series)} series, e.g. {first_labels} = {_fmt(first_value)}"
        )
    if not series:
        return ProbeResult(False, latency_ms, "no data")
    values = [value for _, value in series]
    for clause in condition.clauses:
        if not clause.holds(values):
            test = _OPS[clause.op]
            bad = next((item for item in series if not test(item[1], clause.number)), series[0])
            return ProbeResult(
                False, latency_ms, f"{bad[0]} = {_fmt(bad[1])} (expected {clause})"[:200]
            )
    shown = _fmt(values[0]) if len(values) == 1 else f"{len(values)} series"
    return ProbeResult(True, latency_ms, f"value {shown} holds")


async def check_promql(
    client: httpx.AsyncClient, target: Any, max_body: int = MAX_BODY
) -> ProbeResult:
    """Run `target.address` as an instant query against `target.prometheus_url`."""
    condition = parse_value_condition(target.condition or "value > 0")
    url = f"{target.prometheus_url}/api/v1/query"
    start = time.perf_counter()
    try:
        async with asyncio.timeout(target.timeout):
            request = client.build_request("GET", url, params={"query": target.address})
            response = await client.send(request, stream=True)
            try:
                body = await _read_bounded(response, max_body)
            finally:
                await response.aclose()
    except TimeoutError:
        elapsed = (time.perf_counter() - start) * 1000
        return ProbeResult(False, elapsed, f"timeout after {_seconds(target.timeout)}")
    except BodyTooLarge:
        return ProbeResult(False, (time.perf_counter() - start) * 1000, "answer over the limit")
    except Exception as exc:
        return ProbeResult(False, (time.perf_counter() - start) * 1000, describe_error(exc))
    latency = (time.perf_counter() - start) * 1000
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ProbeResult(False, latency, f"HTTP {response.status_code}: answer is not JSON")
    if response.status_code != 200 and not (
        isinstance(document, dict) and document.get("status") == "error"
    ):
        return ProbeResult(False, latency, f"HTTP {response.status_code}")
    return evaluate_promql(condition, document, latency)


def verification_targets(
    conditions: Iterable[Any], existing: Iterable[str] = (), service: str = "promql"
) -> list[TargetConfig]:
    """Promql targets for the `promql …` clauses of step verifications (`Condition`s).

    Add them to the probe config (they use `[prometheus] url`) so a verification such as
    `verify: promql sum(rate(errors_total[1m])) < 0.01` turns green by itself. Clauses that
    share a query and condition share a target; names in `existing` are not repeated.
    """
    seen = set(existing)
    out: list[TargetConfig] = []
    for condition in conditions:
        for clause in condition.promql():
            if clause.target in seen:
                continue
            seen.add(clause.target)
            out.append(
                TargetConfig(
                    name=clause.target,
                    service=service,
                    promql=clause.query,
                    condition=clause.condition,
                    failure_threshold=1,
                    success_threshold=1,
                    tags=["verification"],
                )
            )
    return out
