"""The only place that writes outputs: atomically, or compared against what is on disk (--check)."""

from __future__ import annotations

import contextlib
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


class WriteError(Exception):
    """An output could not be written; nothing of this call is left on disk. The message names the file."""


def write_outputs(outdir: Path, outputs: list[Output]) -> list[Path]:
    """Write every output or none: stage all as temporary files, then swap them in with a rollback.

    Each file is written through a temporary file and a rename, so none is ever half-written; when any
    rename fails, the files already swapped in are put back as they were and every temporary is removed.
    """
    if outdir.exists() and not outdir.is_dir():
        raise WriteError(f"cannot write outputs into {outdir}: it is a file, not a directory")
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []  # directories this call created, removed again on a failure
    mode = _file_mode()
    try:
        for out in outputs:
            dest = outdir / out.path
            missing = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.extend(missing)
            if dest.is_dir():
                raise IsADirectoryError(21, "it is a directory", str(dest))
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
            staged.append((Path(tmp_name), dest))
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(out.text)
        _swap_in(staged)
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for directory in sorted(set(made), key=lambda d: len(d.parts), reverse=True):  # deepest first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise WriteError(f"cannot write {exc.filename or outdir}: {exc.strerror or exc}; nothing was written") from exc
    finally:
        for staged_file, _ in staged:
            staged_file.unlink(missing_ok=True)
    return [dest for _, dest in staged]


def _swap_in(staged: list[tuple[Path, Path]]) -> None:
    """Rename each staged file over its destination; on a failure, restore what was replaced."""
    done: list[tuple[Path, Path | None]] = []  # (dest, the old file's backup, or None when there was none)
    try:
        for tmp, dest in staged:
            backup = None
            if dest.exists():
                backup = dest.with_name(f".{dest.name}.{os.getpid()}.bak")
                os.replace(dest, backup)
            done.append((dest, backup))
            os.replace(tmp, dest)
    except BaseException:
        for dest, backup in reversed(done):
            if backup is not None:
                os.replace(backup, dest)
            else:
                dest.unlink(missing_ok=True)
        raise
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)


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
