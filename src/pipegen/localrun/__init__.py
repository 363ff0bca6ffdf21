"""`pipegen run`: execute a pipeline on this machine through the shared runtime.

`local` steps run as process groups here; `aws_batch` and `sagemaker` steps are submitted to AWS and waited
for, as the KFP components do; independent steps run side by side (`--parallelism`).

Modules: `setup` (what is settled before the first step), `scheduler` (`LocalRun`: order, concurrency,
interrupts), `steps` (one step with its retries), `jobs` (a step's command, here or on AWS), `outcome`,
`progress` (terminal lines and the summary), `steplogs` (the runtime's log records, per step).
"""

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
