"""Expressions, thresholds, durations and schedules: the small parsers the spec relies on."""

from __future__ import annotations

import pytest

from pipegen.durations import format_duration, parse_duration
from pipegen.expr import ExpressionError, Lit, Ref, parse_template
from pipegen.schedule import normalize_cron
from pipegen.thresholds import Threshold, parse_threshold


def test_template_splits_literals_and_references() -> None:
    t = parse_template("s3://logs/dt=${run.date}/lr=${params.learning_rate}")
    assert t.parts == (
        Lit("s3://logs/dt="),
        Ref("run", "date"),
        Lit("/lr="),
        Ref("params", "learning_rate"),
    )
    assert not t.is_literal


def test_template_escape_and_whole_reference() -> None:
    assert parse_template("cost $${HOME}").parts == (Lit("cost ${HOME}"),)
    assert parse_template("${secret.db_url}").single_ref == Ref("secret", "db_url")
    assert parse_template("{{ ds }} {% if %} $x").is_literal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${params.x", "unclosed"),
        ("${foo.x}", "unknown expression namespace 'foo'"),
        ("${run.time}", "unknown run field 'time'"),
        ("${params.}", "needs a name"),
        ("${env.1X}", "invalid env name"),
        ("${params}", "needs a name"),
    ],
)
def test_template_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_template(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ndcg > 0.78", Threshold("ndcg", ">", 0.78)),
        ("precision_at_10>=0.30", Threshold("precision_at_10", ">=", 0.30)),
        ("  mae < 12 ", Threshold("mae", "<", 12.0)),
        ("val/loss <= 1e-3", Threshold("val/loss", "<=", 0.001)),
        ("x == -1", Threshold("x", "==", -1.0)),
        ("x != .5", Threshold("x", "!=", 0.5)),
    ],
)
def test_thresholds_parse(text: str, expected: Threshold) -> None:
    assert parse_threshold(text) == expected


@pytest.mark.parametrize("text", ["ndcg >> 1", "ndcg > abc", "> 0.5", "ndcg", "ndcg > 1e999", "ndcg => 1", "a b > 1"])
def test_thresholds_reject(text: str) -> None:
    with pytest.raises(ValueError):
        parse_threshold(text)


def test_threshold_holds() -> None:
    assert Threshold("mae", "<", 12).holds(11.9)
    assert not Threshold("mae", "<", 12).holds(12)
    assert Threshold("ndcg", ">=", 0.3).holds(0.3)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0s", 0)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "m5", "1m1h", "1.5h", "-1s", "1 h"])
def test_durations_reject(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 3600, 5400, 86400 + 61])
def test_duration_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_cron_presets_and_expressions() -> None:
    assert normalize_cron("@daily") == "0 0 * * *"
    assert normalize_cron("0  2 * * *") == "0 2 * * *"
    assert normalize_cron("*/15 9-17 * * mon-fri") == "*/15 9-17 * * mon-fri"


@pytest.mark.parametrize("text", ["0 2 * *", "61 * * * *", "@fortnightly", "0 0 0 * * *", "* * 32 * *", "nonsense"])
def test_cron_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_cron(text)


def test_step_graph_order_ancestors_and_networkx_view() -> None:
    """Lexicographic topological order as networkx gives it; `.graph` is the same graph for networkx users."""
    import networkx as nx

    from pipegen.frontend import check_source
    from pipegen.loader import Source

    text = (
        "pipegen: 1\nname: g\nbackends: {b: {type: local}}\nsteps:\n"
        "  - {name: c, task: {backend: b, command: [x]}}\n"
        "  - {name: a, after: [], task: {backend: b, command: [x]}}\n"
        "  - {name: d, after: [a, c], task: {backend: b, command: [x]}}\n"
        "  - {name: b2, after: [a], task: {backend: b, command: [x]}}\n"
    )
    graph = check_source(Source("g.yaml", text)).graph
    assert graph is not None and graph.cycles == ()
    assert graph.order() == ["a", "b2", "c", "d"]
    assert graph.order() == list(nx.lexicographical_topological_sort(graph.graph))
    assert graph.ancestors("d") == {"a", "c"} == nx.ancestors(graph.graph, "d")
    assert sorted(graph.edges()) == sorted(graph.graph.edges)


def test_batch_memory_takes_every_suffix_the_spec_accepts() -> None:
    """`memory: 1Pi` validates (within 2**31-1 MiB), so the Batch lowering must read it too (it asserted before)."""
    from pipegen.targets.resources import quantity_mib

    assert quantity_mib("32Gi") == 32 * 1024 and quantity_mib("512M") == 488 and quantity_mib("1000") == 1
    assert quantity_mib("1Pi") == 2**30 and quantity_mib("2P") == round(2e15 / 2**20)
