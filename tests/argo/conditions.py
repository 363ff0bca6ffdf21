"""A resource template's successCondition / failureCondition, parsed and matched as Argo's executor does.

workflow/executor/resource.go: `labels.Parse(condition)` (Kubernetes label selector syntax: comma-separated
requirements, every key a qualified name), each requirement matched against the object's JSON through gjson
(`Has` = the path exists, `Get` = its value as text). failureCondition: any requirement that matches fails the step;
successCondition: all must match. Only the subset pipegen writes is known here (==, =, !=, in, notin, >, <, exists),
with gjson's plain dotted paths; anything else fails to parse, as a condition Argo would refuse or misread.
"""

from __future__ import annotations

import re
from typing import Any

# k8s.io/apimachinery validation.IsQualifiedName: [prefix/]name, name at most 63 of [A-Za-z0-9_.-], alnum at the ends.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = re.compile(rf"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?{_NAME}")
_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_REQUIREMENT = re.compile(
    r"^\s*(?P<not>!)?\s*(?P<key>[^\s!=<>(),]+)\s*"
    r"(?:(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s,()]*)|(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?\s*$"
)


class BadCondition(ValueError):
    """Argo's executor would fail to parse the condition."""


def _split(condition: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(condition):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(condition[start:i])
            start = i + 1
    return [*parts, condition[start:]]


def parse(condition: str) -> list[tuple[str, str, list[str]]]:
    """(key, operator, values) per requirement; BadCondition where labels.Parse would refuse it."""
    out = []
    for text in _split(condition):
        m = _REQUIREMENT.match(text)
        if m is None or not _KEY.fullmatch(m["key"]):
            raise BadCondition(f"requirement {text.strip()!r} is not a label selector requirement")
        if m["set"]:
            op, values = m["set"], [v.strip() for v in m["values"].split(",")]
        elif m["op"]:
            op, values = m["op"], [m["value"]]
        else:
            op, values = ("!" if m["not"] else "exists"), []
        if op in (">", "<") and not re.fullmatch(r"-?\d+", values[0]):
            raise BadCondition(f"requirement {text.strip()!r}: {op} needs an integer")
        if any(not _VALUE.fullmatch(v) for v in values):
            raise BadCondition(f"requirement {text.strip()!r}: a value is not a label value")
        out.append((m["key"], op, values))
    return out


def _get(document: Any, key: str) -> tuple[bool, str]:
    """gjson: whether the dotted path exists, and its value as text (numbers as written, true/false)."""
    value = document
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, ""
    if isinstance(value, bool):
        return True, "true" if value else "false"
    return True, str(value) if not isinstance(value, dict | list) else repr(value)


def _matches(document: Any, key: str, op: str, values: list[str]) -> bool:
    exists, text = _get(document, key)
    if op == "exists":
        return exists
    if op == "!":
        return not exists
    if op in ("==", "=", "in"):
        return exists and text in values
    if op in ("!=", "notin"):
        return not exists or text not in values
    if not exists or not re.fullmatch(r"-?\d+", text):
        return False
    return int(text) > int(values[0]) if op == ">" else int(text) < int(values[0])


def outcome(resource: dict[str, Any], document: Any) -> str:
    """'failed', 'succeeded' or 'waiting': what Argo's executor concludes from the object as it is now."""
    if any(
        _matches(document, *r) for r in parse(resource.get("failureCondition", "")) if resource.get("failureCondition")
    ):
        return "failed"
    success = parse(resource["successCondition"]) if resource.get("successCondition") else []
    return "succeeded" if all(_matches(document, *r) for r in success) else "waiting"
