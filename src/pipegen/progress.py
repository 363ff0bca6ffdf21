"""Progress of a local run: a live line on a terminal, plain lines otherwise, and the closing summary."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

from pipegen.runtime.redact import redact

if TYPE_CHECKING:
    from pipegen.localrun import Outcome

_MARKS = {"passed": "ok", "failed": "FAILED", "skipped": "skipped", "not run": "not run"}


class Progress:
    """Reports each step as it starts and ends; on a terminal the running step's line ticks live."""

    def __init__(self, stream: TextIO, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self, index: int, total: int, name: str, kind: str) -> None:
        """A step starts."""
        label = f"[{index}/{total}] {name} ({kind})"
        if not self.live:
            self._write(f"{label} started\n")
            return
        self._stop.clear()
        started = time.monotonic()

        def tick() -> None:
            while not self._stop.wait(0.2):
                self._write(f"\r\033[K{label} running {time.monotonic() - started:5.1f}s")

        self._ticker = threading.Thread(target=tick, daemon=True)
        self._ticker.start()

    def _end_live(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            self._write("\r\033[K")

    def retry(self, name: str, attempt: int, delay: float, reason: str) -> None:
        """A step failed and will be tried again."""
        self._end_live()
        self._write(f"      {name}: attempt {attempt} failed ({reason}); retrying in {delay:g}s\n")

    def finish(self, index: int, total: int, outcome: Outcome) -> None:
        """A step ended (or was not run)."""
        self._end_live()
        timing = (
            f" in {outcome.seconds:.1f}s"
            if outcome.status in ("passed", "failed", "skipped") and outcome.seconds
            else ""
        )
        detail = f": {outcome.detail}" if outcome.detail else ""
        self._write(f"[{index}/{total}] {outcome.name} ({outcome.kind}) {_MARKS[outcome.status]}{timing}{detail}\n")

    def note(self, text: str) -> None:
        """A line that belongs to no step."""
        self._end_live()
        self._write(f"{text}\n")

    def _write(self, text: str) -> None:
        # Every progress line passes here: a step's detail may quote a rendered secret (a URL, an error).
        with self._lock:
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
