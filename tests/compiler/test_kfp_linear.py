"""The KFP target's checks and lowering grow linearly with a chain's length (issue 15: 10,000 steps took 2.4 GB)."""

from __future__ import annotations

import tracemalloc

from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.resolve import Pipeline, resolve
from pipegen.targets.kfp.checks import condition_nesting, skip_conditions


def chain(n: int, skip_every: int = 0) -> Pipeline:
    """A chain of n local tasks; with skip_every, every skip_every-th step is an on_fail: skip evaluation."""
    lines = ["pipegen: 1", "name: chain", "steps:", "  - {name: t, train: {command: [run], metrics: [m]}}"]
    for i in range(n):
        if skip_every and i % skip_every == 0:
            lines.append(f"  - {{name: s{i}, evaluate: {{run_of: t, thresholds: ['m > 0'], on_fail: skip}}}}")
        else:
            lines.append(f"  - {{name: s{i}, task: {{command: [run]}}}}")
    checked = check_source(Source("chain.yaml", "\n".join(lines) + "\n"))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    return resolve(checked)


def peak_bytes(pipeline: Pipeline) -> int:
    tracemalloc.start()
    try:
        conditions = skip_conditions(pipeline)
        assert list(condition_nesting(pipeline)) == []
        assert len(conditions) == len(pipeline.steps)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_skip_conditions_memory_is_linear_in_chain_length() -> None:
    # Before the fix every step kept the set of all its ancestors: 3,000 steps peaked at hundreds of MB.
    small, large = peak_bytes(chain(1500)), peak_bytes(chain(3000))
    assert large < 3 * small, (small, large)
    assert large < 8 * 1024 * 1024, large


def test_skip_conditions_keep_their_order_and_sharing() -> None:
    pipeline = chain(40, skip_every=10)
    conditions = skip_conditions(pipeline)
    assert conditions["s9"] == ["s0"]
    assert conditions["s39"] == ["s0", "s10", "s20", "s30"]
    assert conditions["s0"] == []
    # Steps under the same evaluations share one list instead of holding copies.
    assert conditions["s11"] is conditions["s19"]


def test_an_image_kfp_would_read_as_a_placeholder_is_a_located_diagnostic() -> None:
    """kfp's compiler turns `{{channel:...}}` in a container image into a pipeline input, its backend `{{$...}}`."""
    from pipegen.compiler import compile_checked

    image = "reg/img:{{channel:task=;name=p;type=String;}}"
    text = (
        "pipegen: 1\nname: images\nbackends:\n"
        f"  pods: {{type: kubernetes, image: '{image}'}}\n"
        "steps:\n  - {name: t, task: {backend: pods, command: [run]}}\n  - {name: u, task: {command: [run]}}\n"
        f"targets: {{kfp: {{base_image: 'reg/rt:{{{{$}}}}'}}}}\n"
    )
    result = compile_checked(check_source(Source("images.yaml", text)), ["kfp"])
    assert [d.format() for d in result.diagnostics if d.severity.name == "ERROR"] == [
        f"images.yaml:4:35: error[PG602]: target 'kfp' cannot use image '{image}' of backend 'pods': kfp reads "
        "'{{' in an image as a pipeline input placeholder; hint: an image reference has no braces: write it as "
        "registry/name:tag",
        "images.yaml:8:29: error[PG602]: target 'kfp' cannot use base_image 'reg/rt:{{$}}': kfp reads '{{' in an "
        "image as a pipeline input placeholder; hint: an image reference has no braces: write it as registry/name:tag",
    ]
