"""Lower a resolved pipeline for several targets, side by side in forked workers when the pipeline is large.

The targets share nothing while they check and render, so `compile -t all` of a 1,000-step spec can use as many
cores as there are targets. A worker is forked after the front end, so it inherits the pipeline instead of
receiving a pickled copy; only each target's diagnostics and outputs (text) come back. Results are taken in the
order the targets were asked for, so the bytes written never depend on which worker finished first.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence

from pipegen.diagnostics import Diagnostic, has_errors
from pipegen.emit import Output
from pipegen.resolve import Pipeline
from pipegen.targets import available

# Below this many steps a compile takes a few tens of milliseconds per target: starting workers would cost more.
PARALLEL_STEPS = 200

Lowered = tuple[list[Diagnostic], list[Output]]

# What a forked worker lowers: set just before the workers start, read by them, cleared after.
_WORK: tuple[Pipeline, frozenset[str]] | None = None


def lower(pipeline: Pipeline, flags: frozenset[str], name: str) -> Lowered:
    """One target's diagnostics, and its outputs when it found no error."""
    target = available()[name]
    settings = target.options_model.model_validate(pipeline.spec.targets.get(name, {}))
    problems = target.check(pipeline, settings)
    if has_errors(problems):
        return problems, []
    return problems, target.finish(target.render(pipeline, settings), flags)


def _lower_in_worker(name: str) -> Lowered:
    assert _WORK is not None, "workers are forked after _WORK is set"
    return lower(*_WORK, name)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(steps: int, targets: int, jobs: int) -> int:
    """How many workers lower the targets: 0 (lower them in this process) unless forking pays and is safe.

    Only on Linux: macOS's system libraries are not fork-safe (Python defaults to spawn there, which would
    pickle the whole pipeline). Never with other threads running: a fork copies their locks, held or not.
    """
    workers = min(jobs, targets)
    if workers < 2 or steps < PARALLEL_STEPS or not sys.platform.startswith("linux"):
        return 0
    if threading.active_count() > 1:
        return 0
    return workers


def lower_all(pipeline: Pipeline, names: Sequence[str], flags: frozenset[str], jobs: int) -> list[Lowered]:
    """Each target's diagnostics and outputs, in the order of names; up to jobs targets at a time."""
    workers = worker_count(len(pipeline.steps), len(names), jobs)
    if not workers:
        return [lower(pipeline, flags, name) for name in names]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _WORK
    _WORK = (pipeline, flags)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_lower_in_worker, names))
    finally:
        _WORK = None
