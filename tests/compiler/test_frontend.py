"""The front end on whole specs: loading with locations, validation, graph and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipegen.diagnostics import Diagnostic, Location
from pipegen.frontend import check_source
from pipegen.loader import Source
from tests.cases import SPECS

BASE = """\
pipegen: 1
name: p
params: {lr: 0.1}
steps:
  - name: prep
    task: {command: [python, prep.py, "${params.lr}"]}
  - name: train
    train: {command: [python, train.py], metrics: [auc]}
  - name: judge
    evaluate: {run_of: train, thresholds: ["auc > 0.5"]}
  - name: ship
    promote: {model: m, run_of: train}
"""


def diagnostics(text: str) -> list[Diagnostic]:
    return check_source(Source("p.yaml", text)).diagnostics


def codes(text: str) -> list[tuple[str, int, int]]:
    return [(d.code, d.location.line, d.location.column) for d in diagnostics(text)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_example_specs_are_clean(spec: Path) -> None:
    checked = check_source(Source(spec.name, spec.read_text()))
    assert checked.ok
    assert checked.diagnostics == []


def test_base_is_clean() -> None:
    assert diagnostics(BASE) == []


def test_default_order_and_after() -> None:
    checked = check_source(Source("p.yaml", BASE))
    assert checked.graph is not None
    assert checked.graph.order() == ["prep", "train", "judge", "ship"]
    text = BASE.replace("  - name: train\n", "  - name: train\n    after: []\n")
    checked = check_source(Source("p.yaml", text))
    assert checked.graph is not None
    assert checked.graph.upstream("train") == []
    # Two roots: ties are broken by name.
    assert checked.graph.order() == ["prep", "train", "judge", "ship"]


def test_lexicographic_tie_break() -> None:
    text = """\
pipegen: 1
name: p
steps:
  - {name: zeta, task: {command: [a]}, after: []}
  - {name: alpha, task: {command: [a]}, after: []}
  - {name: mid, task: {command: [a]}, after: [zeta, alpha]}
"""
    checked = check_source(Source("p.yaml", text))
    assert checked.graph is not None
    assert checked.graph.order() == ["alpha", "zeta", "mid"]


def test_unknown_key_is_located_with_suggestion() -> None:
    text = BASE.replace("train: {command: [python, train.py]", "train: {comand: [python, train.py]")
    missing, d = diagnostics(text)
    assert (missing.code, missing.location) == ("PG201", Location("p.yaml", 8, 12))
    assert "missing required key 'command'" in missing.message
    assert d.code == "PG200"
    assert d.location == Location("p.yaml", 8, 13)
    assert "did you mean 'command'?" in d.message


def test_duplicate_keys_are_errors() -> None:
    text = BASE.replace("name: p\n", "name: p\nname: q\n")
    [d] = diagnostics(text)
    assert (d.code, d.location.line, d.location.column) == ("PG104", 3, 1)
    assert "first defined at line 2" in d.message


def test_all_errors_reported_sorted() -> None:
    text = BASE.replace("auc > 0.5", "auc >> 0.5").replace("name: p", "name: P")
    got = codes(text)
    assert got == sorted(got, key=lambda c: (c[1], c[2]))
    assert {c[0] for c in got} == {"PG203", "PG207"}


def test_cycle_is_reported_as_a_path() -> None:
    text = BASE.replace("  - name: prep\n", "  - name: prep\n    after: [judge]\n")
    [d] = diagnostics(text)
    assert d.code == "PG302"
    assert d.message == "dependency cycle: judge -> prep -> train -> judge"
    # Located at the 'after' entry that closes the cycle.
    assert (d.location.line, d.location.column) == (6, 13)


def test_self_dependency_is_a_cycle() -> None:
    text = BASE.replace("  - name: prep\n", "  - name: prep\n    after: [prep]\n")
    assert any(d.code == "PG302" and "prep -> prep" in d.message for d in diagnostics(text))


def test_reference_checks() -> None:
    text = (
        BASE.replace("run_of: train, thresholds", "run_of: prep, thresholds")
        .replace('"${params.lr}"', '"${params.lrr}"')
        .replace("metrics: [auc]", "metrics: [acc]")
    )
    got = {d.code: d for d in diagnostics(text)}
    assert "did you mean 'lr'?" in got["PG308"].message
    assert "prep" in got["PG304"].message
    # The promote step now has no evaluate of 'train' before it.
    assert "PG306" in got


def test_metric_must_be_declared() -> None:
    text = BASE.replace('"auc > 0.5"', '"acu > 0.5"')
    [d] = diagnostics(text)
    assert d.code == "PG305"
    assert "(did you mean 'auc'?)" in d.message
    assert (d.location.line, d.location.column) == (10, 44)


def test_evaluate_must_run_after_training() -> None:
    text = BASE.replace("  - name: judge\n", "  - name: judge\n    after: [prep]\n")
    got = [(d.code, d.location.line) for d in diagnostics(text)]
    # Both the evaluate and the promote step read 'train' without running after it.
    assert got == [("PG307", 11), ("PG307", 13)]


SPARK_CONF = "backends:\n  s: {{type: spark, master: 'local[2]', conf: {{spark.hadoop.fs.s3a.{}: {}}}}}\n"


@pytest.mark.parametrize(
    ("replace", "code"),
    [
        (("name: p\n", "name: p\nmlflow: {tracking_uri: 'postgresql://u:hunter2@db/mlflow'}\n"), "PG500"),
        (("name: p\n", "name: p\nmlflow: {tracking_uri: 'https://user:${secret.pw}@mlflow'}\n"), None),
        (("params: {lr: 0.1}", "params: {lr: 0.1, api_token: abc}"), "PG501"),
        (("[python, train.py]", "[python, train.py, --token, abc]"), "PG501"),
        (("[python, train.py]", "[python, train.py, '--token=${secret.t}']"), None),
        # A key that names a provider class, not a credential (Hadoop's S3A settings through Spark's conf).
        (("name: p\n", "name: p\n" + SPARK_CONF.format("aws.credentials.provider", "com.amazonaws.auth.X")), None),
        (("name: p\n", "name: p\n" + SPARK_CONF.format("secret.key", "abc123")), "PG501"),
    ],
)
def test_credentials(replace: tuple[str, str], code: str | None) -> None:
    found = [d.code for d in diagnostics(BASE.replace(*replace)) if d.code.startswith("PG5")]
    assert found == ([code] if code else [])


def test_yaml_keys_are_kept_as_written() -> None:
    # YAML 1.1 reads `on:` as a boolean; pipegen keeps the key text, so it is an unknown key named 'on'.
    [d] = diagnostics(BASE + "on: push\n")
    assert d.code == "PG200"
    assert "'on'" in d.message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "PG102"),
        ("# nothing\n", "PG102"),
        ("- a\n- b\n", "PG103"),
        ("pipegen: 1\nname: [\n", "PG101"),
        ("a: 1\n---\nb: 2\n", "PG106"),
        ("pipegen: 2\nname: p\n", "PG105"),
        ("name: p\nsteps: []\n", "PG105"),
        ("pipegen: 1\nname: !!python/object:os.system x\n", "PG107"),
        ("pipegen: 1\nname: p\nparams: !!python/object/apply:os.system [ls]\n", "PG107"),
        ("pipegen: 1\nname: !!binary aGVsbG8=\n", "PG107"),
        ("pipegen: 1.0\nname: p\n", "PG105"),
        ("pipegen: true\nname: p\n", "PG105"),
        # Nested aliases that would expand to 10**7 values ("billion laughs").
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)),
            "PG107",
        ),
    ],
)
def test_load_failures_are_located(text: str, code: str) -> None:
    [d] = diagnostics(text)
    assert d.code == code
    assert d.location.file == "p.yaml"
    assert d.location.line >= 1
