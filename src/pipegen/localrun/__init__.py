"""`pipegen run`: execute a pipeline on this machine through the shared runtime.

`local` steps run as process groups here; `aws_batch` and `sagemaker` steps are submitted to AWS and waited
for, as the KFP components do; independent steps run side by side (`--parallelism`).

Modules: `setup` (what is settled before the first step), `scheduler` (`LocalRun`: order, concurrency,
interrupts), `steps` (one step with its retries), `jobs` (a step's command, here or on AWS: the one place
that dispatches on the backend type), `outcome`, `progress` (terminal lines and the summary), `steplogs`
(the runtime's log records, per step), `tracker` (how a run reaches MLflow without importing it) and
`worker` (the process that holds MLflow and the store open, across runs for a local sqlite store).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipegen.localrun.jobs import git_commit, last_line
    from pipegen.localrun.outcome import FinalFailure, Interrupted, Outcome, StepFailed
    from pipegen.localrun.scheduler import LocalRun
    from pipegen.localrun.setup import (
        DEFAULT_DB,
        LOG_DIR,
        RUNNABLE_BACKENDS,
        coerce_param,
        default_parallelism,
        default_tracking_uri,
        retry_delays,
        run_key_for,
        unsupported_backends,
    )

# Loaded on first use: the tracking worker (localrun.worker) starts from this package and needs none of it.
_HOMES = {
    "git_commit": "jobs",
    "last_line": "jobs",
    "FinalFailure": "outcome",
    "Interrupted": "outcome",
    "Outcome": "outcome",
    "StepFailed": "outcome",
    "LocalRun": "scheduler",
    **dict.fromkeys(
        (
            "DEFAULT_DB",
            "LOG_DIR",
            "RUNNABLE_BACKENDS",
            "coerce_param",
            "default_parallelism",
            "default_tracking_uri",
            "retry_delays",
            "run_key_for",
            "unsupported_backends",
        ),
        "setup",
    ),
}


def __getattr__(name: str) -> Any:
    """The package's names, imported from their module when first asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "DEFAULT_DB",
    "LOG_DIR",
    "RUNNABLE_BACKENDS",
    "FinalFailure",
    "Interrupted",
    "LocalRun",
    "Outcome",
    "StepFailed",
    "coerce_param",
    "default_parallelism",
    "default_tracking_uri",
    "git_commit",
    "last_line",
    "retry_delays",
    "run_key_for",
    "unsupported_backends",
]
