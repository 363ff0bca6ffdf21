"""Compile specs for Prefect and load the generated flows, as a user's worker would import them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.cases import REPO

DEMO = REPO / "specs" / "demo.yaml"
PRICING = REPO / "specs" / "pricing.yaml"


def compile_prefect(out: Path, *specs: Path) -> Path:
    """`pipegen compile SPECS -t prefect -o OUT` as users run it; returns OUT/prefect."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipegen", "compile", *map(str, specs), "-t", "prefect", "-o", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "prefect"


def load_module(path: Path) -> ModuleType:
    """Import a generated module from its file (a fresh module object each time)."""
    spec = importlib.util.spec_from_file_location(f"pipegen_prefect_{path.stem.replace('-', '_')}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_flow(folder: Path, spec_name: str) -> Any:
    """The flow a spec compiled to: function `<name with - as _>` in `<name>.py` (the target's contract)."""
    return getattr(load_module(folder / f"{spec_name}.py"), spec_name.replace("-", "_"))


def demo_variant(folder: Path, model: str, *, replace: dict[str, str] | None = None, append: str = "") -> Path:
    """specs/demo.yaml with its own model and experiment (tests share one MLflow server), edited as told."""
    text = DEMO.read_text().replace("model: pipegen-demo", f"model: {model}")
    text = text.replace("experiment: pipegen-demo", f"experiment: {model}")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.yaml"
    path.write_text(text + append)
    return path
