"""Running a job's command with its output redacted on the way to the log.

A job's environment holds rendered secrets, and a training script may well print its environment:
its stdout and stderr are copied line by line through the redactor instead of straight to the log.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
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
) -> int:
    """Run argv with stdout and stderr, redacted, written to output (default: this process's stdout); its exit code.

    Raises FileNotFoundError like subprocess.run, and subprocess.TimeoutExpired after killing the command.
    """
    if output is None:
        sys.stdout.flush()
        output = sys.stdout.buffer
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    copier = threading.Thread(target=_copy, args=(proc.stdout, output), daemon=True)
    copier.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        # A grandchild that keeps the pipe open must not hold the step forever.
        copier.join(_DRAIN_SECONDS)
    return proc.returncode


def _copy(source: IO[bytes], output: IO[bytes]) -> None:
    try:
        for line in iter(source.readline, b""):
            # surrogateescape: bytes that are not UTF-8 go through unchanged.
            text = line.decode("utf-8", "surrogateescape")
            output.write(redact(text).encode("utf-8", "surrogateescape"))
            output.flush()
    except (OSError, ValueError):  # the log was closed under a grandchild still writing: stop copying
        pass
    finally:
        source.close()
