"""The target registry: every module in this package that defines TARGET, plus installed plugins."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from importlib.metadata import entry_points

from pipegen.targets.base import Target

ENTRY_POINT_GROUP = "pipegen.targets"
_extra: dict[str, Target] = {}


@functools.lru_cache(maxsize=1)
def _discovered() -> dict[str, Target]:
    found: dict[str, Target] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        target = getattr(module, "TARGET", None)
        if isinstance(target, Target):
            found[target.name] = target
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        target = ep.load()
        if isinstance(target, Target):
            found.setdefault(target.name, target)
    return found


def available() -> dict[str, Target]:
    """Every target by name, in name order."""
    merged = {**_discovered(), **_extra}
    return dict(sorted(merged.items()))


def register(target: Target) -> None:
    """Add a target at run time (plugins and tests)."""
    _extra[target.name] = target


def unregister(name: str) -> None:
    """Remove a target added with register()."""
    _extra.pop(name, None)
