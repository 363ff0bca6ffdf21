"""The only place that writes outputs: atomically, or compared against what is on disk (--check)."""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Output:
    """One generated file: a path relative to the output directory and its text."""

    path: str
    text: str


def _file_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's is 0600, unreadable to a DAG processor user)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_outputs(outdir: Path, outputs: list[Output]) -> list[Path]:
    """Write every output, each through a temporary file and a rename, so no file is ever half-written."""
    staged: list[tuple[str, Path]] = []
    mode = _file_mode()
    try:
        for out in outputs:
            dest = outdir / out.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(out.text)
            staged.append((tmp, dest))
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, dest in staged:
        os.replace(tmp, dest)
    return [dest for _, dest in staged]


def stale_outputs(outdir: Path, outputs: list[Output]) -> list[str]:
    """A unified diff for each output that differs from the file on disk (missing files included)."""
    diffs = []
    for out in outputs:
        dest = outdir / out.path
        try:
            current = dest.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current == out.text:
            continue
        diff = difflib.unified_diff(
            [] if current is None else current.splitlines(keepends=True),
            out.text.splitlines(keepends=True),
            fromfile=str(dest) if current is not None else "/dev/null",
            tofile=str(dest),
        )
        diffs.append("".join(line if line.endswith("\n") else line + "\n" for line in diff))
    return diffs
