"""Durations as written in specs: `90s`, `5m`, `2h`, `1d`, or combined like `1h30m`."""

from __future__ import annotations

import re

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Units in descending order, each at most once: the format people write in Airflow and k8s specs.
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def parse_duration(text: str) -> int:
    """Return the number of seconds in a duration string, or raise ValueError."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"invalid duration '{text}'")
    return sum(int(v) * unit for v, unit in zip(match.groups(), _UNITS.values(), strict=False) if v)


def format_duration(seconds: int) -> str:
    """Write seconds back in the spec's duration form (`5400` -> `1h30m`)."""
    if seconds == 0:
        return "0s"
    out = []
    for suffix, unit in _UNITS.items():
        count, seconds = divmod(seconds, unit)
        if count:
            out.append(f"{count}{suffix}")
    return "".join(out)
