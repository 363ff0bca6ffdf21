"""The runtime's log records during a local run go to the log of the step that wrote them, not the terminal.

Steps run in threads side by side, so a record is routed by the thread that created it. A warning (a gate
check that raised, a retried call to MLflow) is also shown on the terminal as one whole line with the step's
name, through the progress printer, so concurrent steps never interleave mid-line.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

RUNTIME_LOGGER = "pipegen.runtime"


class StepLogs(logging.Handler):
    """Writes each record of the runtime's loggers to its step's log file; warnings also to note()."""

    def __init__(self, note: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.note = note
        self._steps: dict[int, tuple[str, Path]] = {}
        self._files_lock = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s pipegen %(levelname)s %(message)s"))

    @contextlib.contextmanager
    def step(self, name: str, path: Path) -> Iterator[None]:
        """Records the calling thread creates in the block belong to step name, logged to path."""
        ident = threading.get_ident()
        self._steps[ident] = (name, path)
        try:
            yield
        finally:
            self._steps.pop(ident, None)

    def emit(self, record: logging.LogRecord) -> None:
        """Route one record (already redacted as it was created: see runtime.redact)."""
        try:
            owner = self._steps.get(record.thread or 0)
            if owner is not None:
                line = self.format(record).replace("\n", "\n    ")
                with self._files_lock:
                    owner[1].parent.mkdir(parents=True, exist_ok=True)
                    with owner[1].open("a", encoding="utf-8", errors="replace") as log:
                        log.write(line + "\n")
            if record.levelno >= logging.WARNING:
                message = record.getMessage().splitlines()[0] if record.getMessage() else ""
                self.note(f"      {owner[0]}: {message}" if owner is not None else f"pipegen: {message}")
        except Exception:  # noqa: BLE001 - logging must never break a step (logging.Handler's own convention)
            self.handleError(record)


@contextlib.contextmanager
def routed(handler: StepLogs) -> Iterator[None]:
    """Install handler on the runtime's loggers (at INFO) while the block runs."""
    logger = logging.getLogger(RUNTIME_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
