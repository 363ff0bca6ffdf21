"""The compiler never imports airflow, kfp, mlflow or prefect (each costs seconds per process).

This module runs in every test environment: in the Airflow and KFP environments it proves the
point for the libraries that are importable there.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.cases import REPO, SPECS, rel

HEAVY = ("airflow", "kfp", "mlflow", "boto3", "prefect", "ray", "pyspark")

PROBE = """
import sys
from pipegen.cli import main
code = main(sys.argv[1:])
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {heavy!r})
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
raise SystemExit(code)
"""


def installed() -> list[str]:
    return [name for name in HEAVY if importlib.util.find_spec(name) is not None]


def test_some_heavy_library_is_present() -> None:
    """Otherwise the guard below would prove nothing in this environment."""
    assert installed(), "this environment has none of airflow, kfp, mlflow, boto3"


@pytest.mark.parametrize(
    "args",
    [
        ["validate", *map(rel, SPECS)],
        ["graph", "specs/feed-ranking.yaml"],
        ["schema"],
        ["targets"],
        ["compile", *map(rel, SPECS), "-t", "all", "-o", "build/import-guard", "--check"],
    ],
    ids=lambda a: a[0],
)
def test_commands_do_not_import_heavy_libraries(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    [marker] = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY:")]
    assert marker == "HEAVY:", f"pipegen {args[0]} imported {marker[6:]}"
