"""Errors the runtime raises with a message meant for the person reading the task log."""

from __future__ import annotations

from pipegen.runtime.redact import redact


class RuntimeFailure(RuntimeError):
    """A pipeline step cannot complete; the message says why and what to check (secrets masked)."""

    def __init__(self, message: str) -> None:
        # Masked when raised: the message reaches task logs, execution histories and webhooks as it is.
        super().__init__(redact(message))
