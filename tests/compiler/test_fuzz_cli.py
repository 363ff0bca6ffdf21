"""The command line under hostile input: exit 0, 1 or 2 only, never an internal error, nothing written on failure.

Specs are the example specs with one value replaced by something hostile (NaN, infinities, huge numbers,
blank or control-character text, deep nesting), saved under hostile file names, compiled for every target
into hostile output paths, in-process through `pipegen.cli.main` (bounded: a few hundred examples).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipegen.cli import main
from tests.cases import SPECS

VALID = [yaml.safe_load(p.read_text()) for p in SPECS]

hostile_scalars = st.one_of(
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            1e308,
            -(2**63),
            2**63,
            10**30,
            0,
            -1,
            0.0000001,
            "",
            " ",
            "\r",
            "\u2028",
            "\t\n",
            "\x00",
            "\x1b[31m",
            "a.md",
            "{{ 7*7 }}",
            "{%",
            "${",
            "$${x}",
            "99999999999d",
            "0s",
            "1e38",
            "*/",
            '"""',
            "\\",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
)
file_names = st.sampled_from(
    [
        "spec.yaml",
        "evil\nimport os; os.system('touch PWNED')\n#.yaml",
        'quote"s.yaml',
        "it's.yaml",
        "sp ace.yaml",
        "#hash.yaml",
        "uni\u00e9\u2028.yaml",
        "-dash.yaml",
    ]
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))] or [path]
    return [path]


def replaced(spec: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(spec) if isinstance(spec, dict) else list(spec)
    copy[path[0]] = replaced(spec[path[0]], path[1:], new)  # type: ignore[index]
    return copy


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


@SETTINGS
@given(
    which=st.integers(min_value=0, max_value=len(VALID) - 1),
    pick=st.integers(min_value=0, max_value=10_000),
    value=hostile_scalars,
    name=file_names,
    outdir=st.sampled_from(["out", "o u t", "o\nut", "deep/er/out"]),
)
def test_hostile_specs_never_crash_and_never_half_write(
    which: int, pick: int, value: Any, name: str, outdir: str
) -> None:
    spec = VALID[which]
    paths = leaf_paths(spec)
    data = replaced(spec, paths[pick % len(paths)], value)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / name
        source.write_text(yaml.safe_dump(data, allow_unicode=True))
        for args in (["validate", str(source)], ["compile", str(source), "-t", "all", "-o", str(root / outdir)]):
            code, text = cli(*args)
            assert code in (0, 1, 2), (args, code, text[-2000:])
            assert "Traceback" not in text and "internal error" not in text, text[-2000:]
            if args[0] == "compile" and code != 0:
                assert files_under(root) == [source], "a failed compile wrote files"


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(min_value=1, max_value=100_000), opener=st.sampled_from(["[", "{a: ", "- "]))
def test_any_nesting_is_a_diagnostic(depth: int, opener: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "deep.yaml"
        body = (
            opener * depth if opener != "- " else "".join(f"\n{' ' * min(i, 2000)}- " for i in range(min(depth, 3000)))
        )
        source.write_text(f"pipegen: 1\nname: x\nsteps: {body}\n")
        code, text = cli("validate", str(source))
        assert code == 1, text[-500:]
        assert "Traceback" not in text


EVERY_LEAF_VALUES = [math.nan, math.inf, 10**30, " ", "\r", "\u2028", "a.md", "{{ 7*7 }}"]
LEAVES = [(i, path) for i, spec in enumerate(VALID) for path in leaf_paths(spec)]


def test_every_leaf_of_every_example_takes_every_hostile_value(tmp_path: Path) -> None:
    """Not sampled: each value in each field, so a rarely drawn field (a description) is never skipped."""
    failures = []
    for n, (which, path) in enumerate(LEAVES):
        for k, value in enumerate(EVERY_LEAF_VALUES):
            data = replaced(VALID[which], path, value)
            source = tmp_path / f"s{n}-{k}.yaml"
            source.write_text(yaml.safe_dump(data, allow_unicode=True))
            out = tmp_path / f"out{n}-{k}"
            code, text = cli("compile", str(source), "-t", "all", "-o", str(out))
            if code not in (0, 1) or "Traceback" in text or (code != 0 and out.exists()):
                failures.append(
                    f"{SPECS[which].name} {'.'.join(map(str, path))} = {value!r}: exit {code}: {text[-300:]}"
                )
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} in all)"
