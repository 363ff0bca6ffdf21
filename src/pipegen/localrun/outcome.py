"""What a step of a local run ends with, and how a step is told to stop."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pipegen.runtime.aws_jobs import Cancelled


class StepFailed(Exception):
    """A step could not complete; the message is the reason shown in the summary."""


class FinalFailure(StepFailed):
    """A failure a retry cannot change: a failed judgement, a gate whose wait ran out. Never retried.

    Every target treats these the same way: Airflow fails the evaluation without retrying and does not
    retry a sensor's timeout, Step Functions ends in its Fail state, KFP retries only errors.
    """


class Interrupted(Cancelled):
    """The run was interrupted (Ctrl-C, SIGTERM) while this step ran.

    A Cancelled, so the runtime's job waits stop their AWS job on the way out, and a BaseException,
    so no retry loop takes it for a failure to retry.
    """


@dataclass
class Outcome:
    """What happened to one step."""

    name: str
    kind: str
    status: str = "not run"  # passed | failed | skipped | not run
    detail: str = ""
    seconds: float = 0.0
    attempts: int = 0
    result: dict[str, Any] = field(default_factory=dict)


class Stop:
    """Set once when the run is interrupted; running steps poll it, and their waits end with it."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self) -> None:
        """Tell every running step to stop."""
        self.event.set()

    def is_set(self) -> bool:
        """Whether the run was interrupted."""
        return self.event.is_set()

    def check(self) -> None:
        """Raise Interrupted when the run was interrupted."""
        if self.event.is_set():
            raise Interrupted("the run was interrupted")

    def sleep(self, seconds: float) -> None:
        """time.sleep that ends early, raising Interrupted, when the run is interrupted."""
        if self.event.wait(max(0.0, seconds)):
            raise Interrupted("the run was interrupted")
