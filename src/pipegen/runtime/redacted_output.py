"""Running a job's command with its output redacted on the way to the log.

A job's environment holds rendered secrets, and a training script may well print its environment:
its stdout and stderr are copied line by line through the redactor instead of straight to the log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from pipegen.runtime.redact import redact

# After the command exits, how long to wait for output that its own children still write.
_DRAIN_SECONDS = 5.0


def run_redacted(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    output: IO[bytes] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run argv with stdout and stderr, redacted, written to output (default: this process's stdout); its exit code.

    Raises FileNotFoundError like subprocess.run, and subprocess.TimeoutExpired after ending the command's
    whole process group. When stop is set (from another thread) the process group is ended the same way and
    the command's exit code (negative: the signal) is returned; the caller knows why.
    """
    # Its own process group: subprocess.run would kill only the direct child, so workers a training
    # script started (data loaders, `torchrun` ranks) would outlive the step and keep its GPU or port.
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    assert proc.stdout is not None
    copier = threading.Thread(target=_copy, args=(proc.stdout, _sink(output)), daemon=True)
    copier.start()
    try:
        if stop is None:
            proc.wait(timeout=timeout)
        elif _wait_or_stop(proc, timeout, stop):
            end_group(proc)
    except BaseException:  # the timeout, or an interrupt (Ctrl-C, SIGTERM) of the process running the step
        end_group(proc)
        raise
    finally:
        # A grandchild that keeps the pipe open must not hold the step forever.
        copier.join(_DRAIN_SECONDS)
    return proc.returncode


def _wait_or_stop(proc: subprocess.Popen[bytes], timeout: float | None, stop: threading.Event) -> bool:
    """Wait for proc (TimeoutExpired past timeout); True as soon as stop is set while it still runs."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while proc.poll() is None:
        if deadline is not None and time.monotonic() >= deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0.0)
        # A worker thread cannot get KeyboardInterrupt: it polls the run's stop event instead.
        if stop.wait(0.1):
            return proc.poll() is None
    return False


def end_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, give it a grace period to save its work, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _sink(output: IO[bytes] | None) -> Callable[[str], None]:
    """Where redacted lines go: output, else this process's stdout (which a task runner may have replaced)."""
    if output is not None:
        binary = output
    else:
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # a text-only stream, e.g. a logging adapter: hand it text

            def write_text(text: str) -> None:
                sys.stdout.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                sys.stdout.flush()

            return write_text
        binary = buffer

    def write(text: str) -> None:
        # surrogateescape: bytes that are not UTF-8 go through unchanged.
        binary.write(text.encode("utf-8", "surrogateescape"))
        binary.flush()

    return write


def _copy(source: IO[bytes], write: Callable[[str], None]) -> None:
    try:
        for line in iter(source.readline, b""):
            write(redact(line.decode("utf-8", "surrogateescape")))
    except (OSError, ValueError):  # the log was closed under a grandchild still writing: stop copying
        pass
    finally:
        source.close()
