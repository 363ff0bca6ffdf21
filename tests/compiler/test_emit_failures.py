"""compile writes all outputs or none: a destination that cannot be written leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipegen.emit import Output, WriteError, write_outputs
from tests.cases import REPO


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def compile_into(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipegen", "compile", "specs/pricing.yaml", "-t", "all", "-o", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def test_one_unwritable_destination_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "build"
    # The Step Functions definition's path is taken by a directory: that one output cannot be written.
    (out / "stepfunctions" / "pricing.asl.json").mkdir(parents=True)
    (out / "airflow").mkdir()
    (out / "airflow" / "pricing.py").write_text("# the previous output\n")
    before = tree(out)
    proc = compile_into(out)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("pipegen: error: cannot write ")
    assert "nothing was written" in proc.stderr and "Traceback" not in proc.stderr
    assert tree(out) == before, "outputs were written or temporary files left behind"
    assert sorted(p.name for p in out.rglob("*")) == sorted(
        ["airflow", "pricing.py", "stepfunctions", "pricing.asl.json"]
    )


def test_a_failed_swap_restores_the_files_it_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename of the third file fails after two were swapped in: the first two are put back."""
    import os

    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.txt", "b.txt"):
        (out / name).write_text(f"old {name}\n")
    real_replace = os.replace
    calls: list[str] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(str(dst))
        if str(dst).endswith("c.txt"):
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(WriteError, match=r"c\.txt: Permission denied; nothing was written"):
        write_outputs(out, [Output("a.txt", "new a\n"), Output("b.txt", "new b\n"), Output("c.txt", "new c\n")])
    assert tree(out) == {"a.txt": b"old a.txt\n", "b.txt": b"old b.txt\n"}
    assert any(c.endswith("c.txt") for c in calls)


def test_an_output_directory_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text("hello\n")
    proc = compile_into(target)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"pipegen: error: cannot write outputs into {target}: it is a file, not a directory"
    assert target.read_text() == "hello\n"


def test_an_unwritable_directory_is_one_line_and_leaves_no_directories(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        # root ignores directory permissions: make the output's parent a file instead.
        blocker = tmp_path / "blocker"
        blocker.write_text("")
        out = blocker / "build"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "build"
    proc = compile_into(out)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pipegen: error: cannot write"), proc.stderr
    assert not out.exists()
