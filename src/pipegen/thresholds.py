"""Metric thresholds as written in specs: `metric op number`, e.g. `ndcg > 0.78`."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Op = Literal[">", ">=", "<", "<=", "==", "!="]

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}

# MLflow metric names may hold letters, digits, '_', '-', '.', '/' (and spaces, which we refuse here).
METRIC_NAME = r"[A-Za-z_][A-Za-z0-9_./-]*"
_THRESHOLD = re.compile(
    rf"\s*(?P<metric>{METRIC_NAME})\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\Z"
)


@dataclass(frozen=True)
class Threshold:
    """One condition a run's metric must meet."""

    metric: str
    op: Op
    value: float

    def holds(self, observed: float) -> bool:
        """True when the observed metric value meets the threshold; NaN and infinities meet none.

        A diverged run logs NaN or an infinite loss: `loss != 0` or `rmse < 1` must not pass it.
        """
        return math.isfinite(observed) and OPS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def parse_threshold(text: str) -> Threshold:
    """Parse `metric op number`, or raise ValueError saying what is wrong."""
    match = _THRESHOLD.match(text)
    if match is None:
        raise ValueError(f"cannot read threshold '{text}': {_why(text)}")
    value = float(match["value"])
    if not math.isfinite(value):
        raise ValueError(f"threshold '{text}' needs a finite number")
    return Threshold(match["metric"], match["op"], value)  # type: ignore[arg-type]


def _why(text: str) -> str:
    """Say what is wrong with a threshold that does not parse."""
    parts = re.match(rf"\s*(?P<metric>{METRIC_NAME})?\s*(?P<op>[<>=!]+)?\s*(?P<rest>.*?)\s*\Z", text, re.S)
    if parts is None or not parts["metric"]:
        return "it must start with a metric name"
    if not parts["op"]:
        return "expected an operator (>, >=, <, <=, ==, !=) after the metric name"
    if parts["op"] not in OPS:
        return f"unknown operator '{parts['op']}' (expected >, >=, <, <=, == or !=)"
    if not parts["rest"]:
        return "expected a number after the operator"
    return f"'{parts['rest']}' is not a number"
