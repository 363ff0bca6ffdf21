"""Errors the runtime raises with a message meant for the person reading the task log."""

from __future__ import annotations

import sys
import traceback

from pipegen.runtime.redact import redact


class RuntimeFailure(RuntimeError):
    """A pipeline step cannot complete; the message says why and what to check (secrets masked)."""

    def __init__(self, message: str) -> None:
        # Masked when raised: the message reaches task logs, execution histories and webhooks as it is.
        super().__init__(redact(message))


def report_failure(action: str, exc: BaseException) -> int:
    """Print a runtime command's failure to stderr, masked, and return its exit status (1).

    A RuntimeFailure is one line naming the action; any other error keeps its traceback for whoever debugs it.
    """
    if isinstance(exc, RuntimeFailure):
        print(redact(f"pipegen.runtime {action}: {exc}"), file=sys.stderr)
    else:
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    return 1
