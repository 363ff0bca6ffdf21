"""Progress of a local run: one whole line per event, a live status line on a terminal, and the closing summary.

Steps run side by side, and every line goes out whole under one lock, so lines of concurrent steps never mix.
On a terminal a status line under them ticks each running step's time; it is cleared before any other line.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import TYPE_CHECKING, TextIO

from pipegen.runtime.redact import redact

if TYPE_CHECKING:
    from pipegen.localrun.outcome import Outcome

_MARKS = {"passed": "ok", "failed": "FAILED", "skipped": "skipped", "not run": "not run"}
_CLEAR = "\r\033[K"


class Progress:
    """Reports each step as it starts and ends; on a terminal the running steps' times tick live."""

    def __init__(self, stream: TextIO, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, float]] = {}  # name -> (label, started), in start order
        self._status_shown = False
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, index: int, total: int, name: str, kind: str) -> None:
        """A step starts."""
        label = f"[{index}/{total}] {name} ({kind})"
        if not self.live:
            self._write(f"{label} started\n")
            return
        with self._lock:
            self._running[name] = (label, time.monotonic())
            if self._ticker is None:
                self._stop.clear()
                self._ticker = threading.Thread(target=self._tick, name="pipegen-progress", daemon=True)
                self._ticker.start()

    def retry(self, name: str, attempt: int, delay: float, reason: str) -> None:
        """A step failed and will be tried again."""
        self._write(f"      {name}: attempt {attempt} failed ({reason}); retrying in {delay:g}s\n")

    def finish(self, index: int, total: int, outcome: Outcome) -> None:
        """A step ended (or was not run)."""
        with self._lock:
            self._running.pop(outcome.name, None)
        timing = (
            f" in {outcome.seconds:.1f}s"
            if outcome.status in ("passed", "failed", "skipped") and outcome.seconds
            else ""
        )
        detail = f": {outcome.detail}" if outcome.detail else ""
        self._write(f"[{index}/{total}] {outcome.name} ({outcome.kind}) {_MARKS[outcome.status]}{timing}{detail}\n")

    def note(self, text: str) -> None:
        """A line that belongs to no step's start or end."""
        self._write(f"{text}\n")

    def close(self) -> None:
        """Stop the live status line (the run has ended)."""
        ticker = self._ticker
        if ticker is not None:
            self._stop.set()
            ticker.join()
            self._ticker = None
        with self._lock:
            self._clear_status()
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                if not self._running:
                    self._clear_status()
                    continue
                now = time.monotonic()
                status = " | ".join(f"{label} running {now - t:5.1f}s" for label, t in self._running.values())
                # One screen line at most: a wrapped status line could not be cleared with \r.
                width = max(20, shutil.get_terminal_size().columns - 1)
                self.stream.write(_CLEAR + redact(status)[:width])
                self.stream.flush()
                self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write(_CLEAR)
            self._status_shown = False

    def _write(self, text: str) -> None:
        # Every progress line passes here: a step's detail may quote a rendered secret (a URL, an error).
        with self._lock:
            self._clear_status()
            self.stream.write(redact(text))
            self.stream.flush()


def summary(pipeline_name: str, outcomes: list[Outcome], tracking_uri: str) -> str:
    """The closing report: what passed, what was skipped and why, and who holds which alias now."""
    width = max(len(o.name) for o in outcomes)
    lines = [
        f"\npipeline {pipeline_name}: " + ("FAILED" if any(o.status == "failed" for o in outcomes) else "succeeded")
    ]
    for o in outcomes:
        lines.append(f"  {o.name.ljust(width)}  {o.status:<8} {o.detail}".rstrip())
    promoted = [o.result for o in outcomes if o.kind == "promote" and o.status == "passed"]
    for result in promoted:
        lines.append(f"model {result['model']}: version {result['holder']} holds alias '{result['alias']}'")
    if not promoted and any(o.kind == "promote" for o in outcomes):
        lines.append("nothing was promoted")
    lines.append(f"MLflow: {tracking_uri}")
    return redact("\n".join(lines) + "\n")
