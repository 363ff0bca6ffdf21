"""The committed JSON Schema in the editor and in CI: yaml-language-server (what VS Code's YAML extension runs) and
Python's jsonschema reject the specs pipegen rejects for their structure, and accept the rest.

The schema says what a spec looks like, not what it means: a spec whose only problems are references, cycles,
credentials, target limits or warnings passes it. `CODE_VERDICTS` below says, code by code, which problems the
schema must catch; every diagnostic in tests/invalid/*.expected must be covered by it.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from pipegen import schema as pipegen_schema
from pipegen import spec as spec_types
from pipegen.diagnostics import CODES, Diagnostic
from pipegen.frontend import check_source
from pipegen.loader import Source, load_file
from tests.cases import INVALID, REPO, SCHEMA, SPECS, expected_path

NODE_DIR = REPO / "tools" / "node"
CHECKER = NODE_DIR / "yaml-ls-check.mjs"
MODELINE = "# yaml-language-server: $schema=../schema/pipegen-v1.schema.json"

# ---- which problems the schema catches ----------------------------------------------------------

REJECTS = "schema rejects"  # a structural rule: the schema must reject a spec with this problem
ACCEPTS = "schema accepts"  # meaning, not structure: the schema must let it through
LOADING = "YAML loading"  # pipegen refuses the YAML itself before any schema applies; see LOADING_CASES

CODE_VERDICTS: dict[str, str] = {
    "PG100": LOADING,  # cannot read the file
    "PG101": LOADING,  # YAML syntax
    "PG102": LOADING,  # empty: no document to validate
    "PG103": REJECTS,  # not a mapping: the schema's root is an object
    "PG104": LOADING,  # duplicate keys: the data model of JSON Schema has none
    "PG105": REJECTS,  # `pipegen: 1` is a required const
    "PG106": LOADING,  # several YAML documents
    "PG107": LOADING,  # tags, merge keys: YAML features pipegen refuses
    "PG200": REJECTS,  # unknown key: additionalProperties false
    "PG201": REJECTS,  # missing key: required
    "PG202": REJECTS,  # types, enums, bounds, patterns
    "PG203": REJECTS,  # name patterns and lengths
    "PG204": REJECTS,  # exactly one step kind: oneOf
    "PG205": REJECTS,  # duration patterns, and longer than zero where pipegen says so
    "PG206": REJECTS,  # presets and five fields (see BY_MESSAGE for what croniter and tzdata judge)
    "PG207": REJECTS,  # threshold pattern
    "PG208": REJECTS,  # ${...} expression pattern
    "PG209": REJECTS,  # backend type / gate check: discriminated oneOf
    "PG210": REJECTS,  # counts' minimum and maximum (see BY_MESSAGE for durations, parameters, Infinity and NaN)
    "PG300": ACCEPTS,  # duplicate step name (uniqueness of a field across items)
    "PG301": ACCEPTS,  # unknown step
    "PG302": ACCEPTS,  # dependency cycle
    "PG303": ACCEPTS,  # unknown backend
    "PG304": ACCEPTS,  # run_of names a step of another kind
    "PG305": ACCEPTS,  # metric not logged
    "PG306": ACCEPTS,  # promote without evaluate
    "PG307": ACCEPTS,  # step runs before its input
    "PG308": ACCEPTS,  # unknown parameter
    "PG309": ACCEPTS,  # champion without a promotion
    "PG400": REJECTS,  # combinations a model checks: row_count takes table or query, evaluate needs something
    "PG500": ACCEPTS,  # credentials
    "PG501": ACCEPTS,
    "PG600": ACCEPTS,  # target limits and options
    "PG601": ACCEPTS,
    "PG602": ACCEPTS,
    "PG603": REJECTS,  # unknown target: the schema lists the registered targets' options under `targets:`
    "PG604": ACCEPTS,
    "PG700": ACCEPTS,  # warnings
    "PG701": ACCEPTS,
    "PG702": ACCEPTS,
}
# Kinds of diagnostic whose verdict is not their code's, first match wins: (code, message regex, verdict, why).
BY_MESSAGE: list[tuple[str, str, str, str]] = [
    ("PG206", r"^unknown timezone ", ACCEPTS, "IANA timezone names are the machine's tzdata, not structure"),
    ("PG206", r"^invalid cron expression ", ACCEPTS, "field ranges and names are croniter's to judge"),
    ("PG400", r" waits .* but checks only every ", ACCEPTS, "compares two values of the spec"),
    (
        "PG210",
        r"^(timeout|retry_delay|max_retry_delay|wait timeout|wait interval|max_age) '",
        ACCEPTS,
        "a duration's length is arithmetic over its parts, beyond what a pattern says (it is in the description)",
    ),
    ("PG210", r"^memory '", ACCEPTS, "a quantity's size is arithmetic over number and suffix, beyond a pattern"),
    ("PG210", r"^integer parameter ", ACCEPTS, "JSON Schema's 'number', which a parameter may be, takes any integer"),
    ("PG210", r" is not a finite number ", ACCEPTS, "JSON has no Infinity or NaN, so JSON Schema cannot refuse them"),
    ("PG400", r" is promoted to several aliases: ", ACCEPTS, "spans several steps"),
]

# Specs pipegen refuses while loading the YAML: what the two tools make of them, as it is.
# editor: "yaml error" = yaml-language-server reports a YAML (not schema) error on pipegen's line, "nothing" = no
#         diagnostic at all, "one document" = only the first of the file's documents is validated.
# jsonschema runs on what PyYAML's safe_load makes of the file ("unreadable" = safe_load fails: nothing to validate).
LOADING_CASES: dict[str, tuple[str, str, str]] = {
    "01-yaml-bad-indentation": ("yaml error", "unreadable", "yaml-language-server places it a line earlier"),
    "02-yaml-unclosed-quote": ("yaml error", "unreadable", "yaml-language-server places it at the end of the file"),
    "03-yaml-unclosed-bracket": ("yaml error", "unreadable", ""),
    "04-empty-file": ("nothing", "rejects", "no document, so the editor validates nothing; null is not an object"),
    "05-only-comment": ("nothing", "rejects", "as 04"),
    "08-two-documents": ("one document", "unreadable", "the modeline heads the first document only"),
    "09-duplicate-keys": ("yaml error", "accepts", "'Map keys must be unique'; safe_load keeps the last value"),
    "12-tab-indentation": ("yaml error", "unreadable", ""),
    "13-python-tag": ("yaml error", "unreadable", "'Unresolved tag'; safe_load refuses python tags"),
    "14-merge-key": ("nothing", "accepts", "both tools apply the merge key; pipegen refuses it on purpose"),
}
# Where the editor places a problem pipegen places elsewhere: (spec, pipegen's line) -> the editor's line. A missing
# key: pipegen points into the mapping that lacks it, the editor at that mapping's own key, a line above.
PLACED_ELSEWHERE = {
    ("16-missing-required-keys", 7): 6,
    ("16-missing-required-keys", 18): 17,
    ("39-invalid-combinations-schema", 18): 17,
}
# Where yaml-language-server's first YAML error stands when it is not on pipegen's line (lines as in the spec).
YAML_ERROR_LINES = {"01-yaml-bad-indentation": 10, "02-yaml-unclosed-quote": 11}


@dataclass(frozen=True)
class Expected:
    """One line of a .expected file."""

    line: int
    column: int
    code: str
    message: str

    @property
    def verdict(self) -> str:
        for code, pattern, verdict, _why in BY_MESSAGE:
            if code == self.code and re.search(pattern, self.message):
                return verdict
        return CODE_VERDICTS[self.code]


_EXPECTED_LINE = re.compile(r"^[^:]+:(\d+):(\d+): (?:error|warning)\[(PG\d{3})\]: (.*); hint: .*$")


def expected_diagnostics(spec: Path) -> list[Expected]:
    """The diagnostics pipegen's .expected file records for an invalid spec."""
    out = []
    for text in expected_path(spec).read_text().splitlines():
        if match := _EXPECTED_LINE.match(text):
            out.append(Expected(int(match[1]), int(match[2]), match[3], match[4]))
    return out


def verdict_of(verdicts: list[str]) -> str:
    """A spec's verdict from its diagnostics': it fails the schema iff any of its problems is structural."""
    if REJECTS in verdicts:
        return REJECTS
    return LOADING if LOADING in verdicts else ACCEPTS


def spec_verdict(spec: Path) -> str:
    return verdict_of([d.verdict for d in expected_diagnostics(spec)])


def live_verdicts(diagnostics: list[Diagnostic]) -> list[str]:
    return [Expected(d.location.line, d.location.column, d.code, d.message).verdict for d in diagnostics]


INVALID_BY_VERDICT = {v: [p for p in INVALID if spec_verdict(p) == v] for v in (REJECTS, ACCEPTS, LOADING)}


def _ids(path: Path) -> str:
    return path.stem


# ---- the classification itself ------------------------------------------------------------------


def test_classification_covers_every_expected_diagnostic() -> None:
    assert set(CODE_VERDICTS) <= set(CODES), "CODE_VERDICTS names a code pipegen does not have"
    assert {code for code, *_ in BY_MESSAGE} <= set(CODE_VERDICTS)
    for spec in INVALID:
        found = expected_diagnostics(spec)
        assert found, f"{expected_path(spec).name} holds no diagnostics"
        for d in found:
            assert d.code in CODE_VERDICTS, f"{spec.name}: classify {d.code} in CODE_VERDICTS"
    # Every message rule still matches a diagnostic, and every loading failure has its outcome written down.
    messages = [(d.code, d.message) for spec in INVALID for d in expected_diagnostics(spec)]
    for code, pattern, _verdict, why in BY_MESSAGE:
        assert any(c == code and re.search(pattern, m) for c, m in messages), f"stale rule: {why}"
    assert {p.stem for p in INVALID_BY_VERDICT[LOADING]} == set(LOADING_CASES)
    # Both kinds are exercised, so neither half of the claim is vacuous.
    assert len(INVALID_BY_VERDICT[REJECTS]) >= 10 and len(INVALID_BY_VERDICT[ACCEPTS]) >= 10


# ---- jsonschema (Draft 2020-12, as the schema declares) -----------------------------------------


def _as_json(value: Any) -> Any:
    """YAML data as JSON carries it (dates become strings)."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value.isoformat() if isinstance(value, date) else value


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_as_json(data))]


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_jsonschema_accepts_example_specs(validator: jsonschema.Draft202012Validator, spec: Path) -> None:
    loaded = load_file(str(spec))
    assert loaded.data is not None
    assert schema_errors(validator, loaded.data) == []


@pytest.mark.parametrize("spec", INVALID_BY_VERDICT[REJECTS], ids=_ids)
def test_jsonschema_rejects_structural_errors(validator: jsonschema.Draft202012Validator, spec: Path) -> None:
    data = load_file(str(spec)).data
    # PG103's non-mappings are data too; pipegen's loader stops before building them.
    if data is None:
        data = yaml.safe_load(spec.read_text())
    assert schema_errors(validator, data), f"the schema accepts {spec.name}"


@pytest.mark.parametrize("spec", INVALID_BY_VERDICT[ACCEPTS], ids=_ids)
def test_jsonschema_accepts_semantic_errors(validator: jsonschema.Draft202012Validator, spec: Path) -> None:
    """The schema is not stricter than pipegen: what only pipegen's checks reject passes it."""
    loaded = load_file(str(spec))
    assert loaded.data is not None
    assert schema_errors(validator, loaded.data) == []


@pytest.mark.parametrize("spec", INVALID_BY_VERDICT[LOADING], ids=_ids)
def test_jsonschema_on_yaml_pipegen_refuses(validator: jsonschema.Draft202012Validator, spec: Path) -> None:
    _editor, expected, _why = LOADING_CASES[spec.stem]
    try:
        data = yaml.safe_load(spec.read_text())
    except yaml.YAMLError:
        assert expected == "unreadable"
        return
    assert expected == ("rejects" if schema_errors(validator, data) else "accepts")


# Each string type a spec validator checks in code, with characters that reach its corners.
STRING_TYPES: dict[str, tuple[Any, str]] = {
    "template": (spec_types.TStr, "${}$. paramsrunenvsecretdateidxX_-1\t\n\x1c"),
    "cron": (spec_types.Cron, "0123456789*/,- @dailyhourlyweekJANMONLW#?\t\xa0\x1c"),
    "threshold": (spec_types.ThresholdStr, "ab_./1 2<>=!+-eE\t\x1c\u0663"),
    "duration": (spec_types.Duration, "0123dhms x\u0663"),
    "alias": (spec_types.Alias, "latesvV12_- "),
    "webhook": (spec_types.Url, "https:/${}secret.x"),
    "step name": (spec_types.StepName, "ab_1-A "),
}


@pytest.mark.parametrize("kind", STRING_TYPES)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_schema_patterns_never_reject_what_pipegen_accepts(kind: str, data: st.DataObject) -> None:
    """Python's re reads the patterns as the schema means them; a spec value pipegen takes, the schema takes."""
    annotated, alphabet = STRING_TYPES[kind]
    adapter = TypeAdapter(annotated)
    value = data.draw(st.text(alphabet, max_size=14), label=kind)
    try:
        adapter.validate_python(value)
    except ValidationError:
        return
    schema = adapter.json_schema(schema_generator=pipegen_schema._Generator)
    assert jsonschema.Draft202012Validator(schema).is_valid(value)


# ---- values at the edges: pipegen, jsonschema and the editor agree -------------------------------

BASE: dict[str, Any] = {
    "pipegen": 1,
    "name": "edge",
    "schedule": "0 2 * * *",
    "params": {"lr": 0.1},
    "defaults": {"retries": 1, "retry_delay": "5m", "timeout": "1h"},
    "backends": {"pods": {"type": "kubernetes", "image": "img:1", "env": {"MODE": "x"}}},
    "steps": [
        {
            "name": "ready",
            "gate": {"check": "freshness", "path": "s3://b/${run.date}/", "max_age": "1d", "wait": {"timeout": "1h"}},
        },
        {"name": "train", "train": {"backend": "pods", "command": ["python", "${params.lr}"], "metrics": ["auc"]}},
        {"name": "quality", "evaluate": {"run_of": "train", "thresholds": ["auc > 0.5"]}},
        {"name": "promote", "promote": {"model": "m", "run_of": "train"}},
    ],
}


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(spec: dict[str, Any]) -> None:
        node: Any = spec
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return apply


def _all(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(spec: dict[str, Any]) -> None:
        for change in changes:
            change(spec)

    return apply


def _row_count(**gate: Any) -> Callable[[dict[str, Any]], None]:
    return _set(("steps", 0, "gate"), {"check": "row_count", "connection": "${secret.db}", **gate})


def _no_evaluate(spec: dict[str, Any]) -> None:
    del spec["steps"][2]["evaluate"]


CMD = ("steps", 1, "train", "command", 1)
STEP_BACKEND = ("steps", 1, "train", "backend")
THRESHOLD = ("steps", 2, "evaluate", "thresholds", 0)
# (id, change to BASE, does pipegen accept it?) Every rejection here is structural (checked below).
EDGES: list[tuple[str, Callable[[dict[str, Any]], None], bool]] = [
    ("base", _set(("description",), "unchanged"), True),
    ("retry-delay-zero", _set(("defaults", "retry_delay"), "0s"), True),
    ("timeout-zero", _set(("defaults", "timeout"), "0h0m"), False),
    ("max-age-zero", _set(("steps", 0, "gate", "max_age"), "0d"), False),
    ("wait-interval-zero", _set(("steps", 0, "gate", "wait", "interval"), "0s"), False),
    ("duration-combined", _set(("defaults", "timeout"), "1d2h3m4s"), True),
    ("timeout-a-year", _set(("defaults", "timeout"), "365d"), True),
    ("max-retry-delay-zero", _set(("defaults", "max_retry_delay"), "0s"), False),
    ("retries-100", _set(("defaults", "retries"), 100), True),
    ("retries-101", _set(("defaults", "retries"), 101), False),
    ("min-rows-float", _row_count(table="t", min_rows=1.0e38), False),
    ("min-rows-2-53", _row_count(table="t", min_rows=2**53), False),
    ("duration-out-of-order", _set(("defaults", "timeout"), "3m2h"), False),
    ("duration-empty", _set(("defaults", "retry_delay"), ""), False),
    ("literal-dollars", _set(CMD, "$$${run.id} $${x} $$ a$b {} $"), True),
    ("ref-with-spaces", _set(CMD, "${ run.date }"), True),
    ("secret-with-dash", _set(CMD, "${secret.db-url}"), True),
    ("ref-dotted-name", _set(CMD, "${params.lr.x}"), False),
    ("ref-no-name", _set(CMD, "${env.}"), False),
    ("ref-unclosed", _set(CMD, "a ${run.id"), False),
    ("preset-with-spaces", _set(("schedule",), "  @daily  "), True),
    ("preset-with-extra", _set(("schedule",), "@daily 1"), False),
    ("cron-names-and-steps", _set(("schedule",), "*/15  0-6 * JAN MON-FRI"), True),
    ("cron-six-fields", _set(("schedule",), "0 2 * * * *"), False),
    ("cron-mapping", _set(("schedule",), {"cron": "0 2 * * *", "timezone": "Europe/Paris", "catchup": True}), True),
    ("threshold-compact", _set(THRESHOLD, "auc>=.5"), True),
    ("threshold-exponent", _set(THRESHOLD, " auc != -1e-3 "), True),
    ("threshold-wrong-op", _set(THRESHOLD, "auc => 1"), False),
    ("alias-v1x", _set(("steps", 3, "promote", "alias"), "v1x"), True),
    ("alias-version", _set(("steps", 3, "promote", "alias"), "V2"), False),
    ("alias-latest", _set(("steps", 3, "promote", "alias"), "latest"), False),
    ("webhook-secret", _set(("steps", 3, "promote", "notify"), [{"webhook": "${secret.hook}"}]), True),
    ("webhook-ftp", _set(("steps", 3, "promote", "notify"), [{"webhook": "ftp://x"}]), False),
    ("kind-plus-null-kind", _set(("steps", 1, "task"), None), True),
    ("no-kind", _no_evaluate, False),
    ("row-count-table", _row_count(table="t", query=None), True),
    ("row-count-both", _row_count(table="t", query="select 1"), False),
    ("row-count-neither", _row_count(), False),
    (
        "evaluate-champion-only",
        _set(("steps", 2, "evaluate"), {"run_of": "train", "champion": {"metric": "auc"}}),
        True,
    ),
    ("evaluate-nothing", _set(("steps", 2, "evaluate"), {"run_of": "train", "thresholds": []}), False),
    ("env-name-underscore", _set(("backends", "pods", "env"), {"_OK": "x"}), True),
    ("env-name-digit", _set(("backends", "pods", "env"), {"1BAD": "x"}), False),
    ("backend-name-upper", _all(_set(("backends", "GPU"), BASE["backends"]["pods"]), _set(STEP_BACKEND, "GPU")), False),
    ("param-name-upper", _all(_set(("params",), {"Lr": 0.1}), _set(CMD, "${params.Lr}")), False),
    ("step-name-63", _set(("steps", 3, "name"), "p" * 63), True),
    ("step-name-64", _set(("steps", 3, "name"), "p" * 64), False),
]


def edge_data(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    change(spec)
    return spec


def edge_text(change: Callable[[dict[str, Any]], None]) -> str:
    return yaml.safe_dump(edge_data(change), sort_keys=False, allow_unicode=True)


@pytest.mark.parametrize(("name", "change", "ok"), EDGES, ids=[e[0] for e in EDGES])
def test_jsonschema_agrees_with_pipegen_at_the_edges(
    validator: jsonschema.Draft202012Validator, name: str, change: Callable[[dict[str, Any]], None], ok: bool
) -> None:
    checked = check_source(Source(f"{name}.yaml", edge_text(change)))
    errors = [d for d in checked.diagnostics if d.severity == "error"]
    if ok:
        assert errors == [], [d.format() for d in errors]
    else:
        assert errors, "pipegen accepts it"
        assert set(live_verdicts(errors)) == {REJECTS}, [d.format() for d in errors]
    assert (schema_errors(validator, edge_data(change)) == []) == ok


# ---- yaml-language-server, as the editor runs it ------------------------------------------------


@dataclass
class EditorRun:
    """What yaml-ls-check.mjs reported for each file of the layout (by stem), and how lines moved."""

    root: Path
    results: dict[str, dict[str, Any]]
    offset: dict[str, int]  # lines the modeline added at the top

    def schema_diagnostics(self, stem: str) -> list[dict[str, Any]]:
        return [d for d in self.results[stem]["diagnostics"] if str(d["source"]).startswith("yaml-schema")]

    def lines(self, stem: str, diagnostics: list[dict[str, Any]]) -> set[int]:
        """Diagnostic lines as lines of the original spec."""
        return {d["line"] - self.offset[stem] for d in diagnostics}


def _require_node() -> None:
    # Like the other Node-backed tests, a missing tool is a failure, never a silent skip.
    assert shutil.which("node") is not None, "node is not on PATH: the editor tests run yaml-language-server"
    assert (NODE_DIR / "node_modules" / "yaml-language-server").is_dir(), "run `make node` first"


def run_checker(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(CHECKER), *map(str, args)], capture_output=True, text=True, check=False, timeout=300
    )


def with_modeline(text: str) -> tuple[str, int]:
    """The spec as the editor would have it: the modeline first (added unless there), and how many lines it added."""
    if text.startswith("# yaml-language-server:"):
        return text, 0
    return f"{MODELINE}\n{text}", 1


def without_modeline(text: str) -> str:
    return text.partition("\n")[2] if text.startswith("# yaml-language-server:") else text


def layout(root: Path) -> Path:
    """root/schema/ holds the committed schema, as schema/ does next to specs/ in the repository."""
    (root / "schema").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCHEMA, root / "schema" / SCHEMA.name)
    return root


YAML_11 = "catchup-yes"  # a spec whose `yes` is a boolean only in YAML 1.1 (what pipegen's PyYAML reads)


def _catchup_yes() -> str:
    text = edge_text(_set(("schedule",), {"cron": "0 2 * * *", "catchup": True}))
    assert text.count("catchup: true") == 1
    return text.replace("catchup: true", "catchup: yes")


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory) -> EditorRun:
    """One yaml-language-server run over every spec, invalid spec (but the two-document one) and edge case."""
    _require_node()
    root = layout(tmp_path_factory.mktemp("editor"))
    files: list[Path] = []
    offset: dict[str, int] = {}
    sources = [("specs", p.stem, p.read_text()) for p in SPECS]
    sources += [("invalid", p.stem, p.read_text()) for p in INVALID if p.stem != "08-two-documents"]
    sources += [("edges", f"edge-{name}", edge_text(change)) for name, change, _ok in EDGES]
    sources.append(("edges", "unknown-key", SPECS[0].read_text() + "bogus_key: 1\n"))
    sources.append(("edges", YAML_11, _catchup_yes()))
    for folder, stem, text in sources:
        path = root / folder / f"{stem}.yaml"
        path.parent.mkdir(exist_ok=True)
        content, offset[stem] = with_modeline(text)
        path.write_text(content)
        files.append(path)
    proc = run_checker(*files)
    assert proc.returncode == 0, proc.stderr
    results = {Path(r["file"]).stem: r for r in json.loads(proc.stdout)}
    assert set(results) == set(offset)
    schema_uri = (root / "schema" / SCHEMA.name).as_uri()
    for stem, result in results.items():
        # Each file was validated against the copied schema, found through its modeline, as draft 2020-12.
        assert result["documents"] == [{"schema": schema_uri, "draft": "2020-12"}], stem
    return EditorRun(root, results, offset)


editor_test = pytest.mark.xdist_group("yaml_language_server")


@editor_test
@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_editor_accepts_example_specs(editor: EditorRun, spec: Path) -> None:
    assert editor.results[spec.stem]["diagnostics"] == []


@editor_test
def test_editor_validates_specs_in_place() -> None:
    """The specs that carry the modeline find the committed schema from where they stand in the repository."""
    _require_node()
    marked = [p for p in SPECS if p.read_text().startswith(f"{MODELINE}\n")]
    assert marked == SPECS, "every spec in specs/ starts with the modeline"
    proc = run_checker(*marked)
    assert proc.returncode == 0, proc.stderr
    for result in json.loads(proc.stdout):
        assert result["documents"] == [{"schema": SCHEMA.as_uri(), "draft": "2020-12"}]
        assert result["diagnostics"] == []


@editor_test
@pytest.mark.parametrize("spec", INVALID_BY_VERDICT[REJECTS], ids=_ids)
def test_editor_rejects_structural_errors(editor: EditorRun, spec: Path) -> None:
    found = editor.schema_diagnostics(spec.stem)
    assert found, f"yaml-language-server reports nothing for {spec.name}"
    assert all(d["source"] != "YAML" for d in editor.results[spec.stem]["diagnostics"])
    # Each structural problem pipegen reports, the editor reports on the same line (most at the same column too).
    where = editor.lines(spec.stem, found)
    for d in expected_diagnostics(spec):
        if d.verdict == REJECTS:
            line = PLACED_ELSEWHERE.get((spec.stem, d.line), d.line)
            assert line in where, (d, found)


@editor_test
@pytest.mark.parametrize("spec", INVALID_BY_VERDICT[ACCEPTS], ids=_ids)
def test_editor_accepts_semantic_errors(editor: EditorRun, spec: Path) -> None:
    assert editor.results[spec.stem]["diagnostics"] == []


@editor_test
@pytest.mark.parametrize("spec", [p for p in INVALID_BY_VERDICT[LOADING] if p.stem != "08-two-documents"], ids=_ids)
def test_editor_on_yaml_pipegen_refuses(editor: EditorRun, spec: Path) -> None:
    expected, _jsonschema, _why = LOADING_CASES[spec.stem]
    found = editor.results[spec.stem]["diagnostics"]
    if expected == "nothing":
        assert found == []
        return
    assert expected == "yaml error"
    yaml_errors = [d for d in found if d["source"] == "YAML" and d["severity"] == "error"]
    assert yaml_errors, found
    pipegen_lines = {d.line for d in expected_diagnostics(spec)}
    where = editor.lines(spec.stem, yaml_errors)
    if spec.stem in YAML_ERROR_LINES:
        assert min(where) == YAML_ERROR_LINES[spec.stem]
    else:
        assert pipegen_lines <= where, (pipegen_lines, yaml_errors)


@editor_test
@pytest.mark.parametrize(("name", "change", "ok"), EDGES, ids=[e[0] for e in EDGES])
def test_editor_agrees_with_pipegen_at_the_edges(
    editor: EditorRun, name: str, change: Callable[[dict[str, Any]], None], ok: bool
) -> None:
    """The patterns mean the same in ECMA-262 (the editor) as in Python's re (pipegen, jsonschema)."""
    found = editor.results[f"edge-{name}"]["diagnostics"]
    assert (found == []) == ok, found


@editor_test
def test_editor_negative_controls(editor: EditorRun, tmp_path: Path) -> None:
    """The harness can fail: a stray key is reported where it stands, and a file whose schema cannot be found or
    that has a document without a schema fails the run instead of passing with no diagnostics."""
    [stray] = editor.results["unknown-key"]["diagnostics"]
    assert stray["message"] == "Property bogus_key is not allowed."
    assert stray["line"] - editor.offset["unknown-key"] == len(SPECS[0].read_text().splitlines()) + 1

    root = layout(tmp_path)
    (root / "specs").mkdir()
    text = SPECS[0].read_text()
    broken = root / "specs" / "broken-modeline.yaml"
    broken.write_text(with_modeline(text)[0].replace("../schema/", "../schemas/"))
    bare = root / "specs" / "no-modeline.yaml"
    bare.write_text(without_modeline(text))
    two = root / "specs" / "two-documents.yaml"
    two.write_text(with_modeline((REPO / "tests" / "invalid" / "08-two-documents.yaml").read_text())[0])
    proc = run_checker(broken, bare, two)
    assert proc.returncode == 1
    assert f"{broken}: cannot read schema {(root / 'schemas' / SCHEMA.name).as_uri()}" in proc.stderr
    assert f"{bare}: document 1 has no schema" in proc.stderr
    assert f"{two}: document 2 has no schema" in proc.stderr
    results = {Path(r["file"]).name: r for r in json.loads(proc.stdout)}
    # What the editor itself shows for the broken path: one warning, and no validation at all.
    [warning] = results[broken.name]["diagnostics"]
    assert warning["message"].startswith("Unable to load schema from") and warning["severity"] == "warning"
    # Only the first of two documents is validated: the modeline heads it alone (08-two-documents).
    assert [d["schema"] is not None for d in results[two.name]["documents"]] == [True, False]
    assert results[two.name]["diagnostics"] == []


@editor_test
def test_editor_reads_yaml_12_unless_told(editor: EditorRun) -> None:
    """pipegen reads YAML 1.1 (PyYAML), where `catchup: yes` is true; the editor reads 1.2 unless set to 1.1."""
    path = editor.root / "edges" / f"{YAML_11}.yaml"
    checked = check_source(Source(path.name, path.read_text()))
    assert checked.ok, [d.format() for d in checked.diagnostics]
    [flagged] = editor.results[YAML_11]["diagnostics"]
    assert flagged["message"] == 'Incorrect type. Expected "boolean".'
    proc = run_checker("--yaml-version", "1.1", path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["diagnostics"] == []


@editor_test
def test_editor_completes_step_kinds_and_hovers(editor: EditorRun) -> None:
    path = editor.root / "specs" / "completion.yaml"
    path.write_text(f"{MODELINE}\npipegen: 1\nname: x\nsteps:\n  - name: a\n    \n")
    proc = run_checker("--at", "6:5", path)
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)
    assert {"gate", "task", "train", "evaluate", "promote", "after", "retries"} <= set(result["completions"])
    assert "name" not in result["completions"]  # already there
    path.write_text(f"{MODELINE}\npipegen: 1\nname: x\nsteps:\n  - name: a\n    train:\n      command: [x]\n")
    proc = run_checker("--at", "6:6", path)
    assert proc.returncode == 0, proc.stderr
    assert "A task that trains into the pipeline's MLflow run." in json.loads(proc.stdout)[0]["hover"]


@editor_test
def test_editor_completes_and_checks_target_options(editor: EditorRun) -> None:
    """Target options are in the schema: the editor offers them under `targets.<name>` and flags a misspelt one."""
    from pipegen.targets import available

    head = f"{MODELINE}\npipegen: 1\nname: x\nsteps:\n  - name: a\n    task: {{command: [x]}}\ntargets:\n"
    path = editor.root / "specs" / "target-options.yaml"
    path.write_text(head + "  \n")
    proc = run_checker("--at", "8:3", path)
    assert proc.returncode == 0, proc.stderr
    assert set(available()) <= set(json.loads(proc.stdout)[0]["completions"])
    for name, target in available().items():
        path.write_text(head + f"  {name}:\n    \n")
        proc = run_checker("--at", "9:5", path)
        assert proc.returncode == 0, proc.stderr
        assert set(target.options_model.model_fields) <= set(json.loads(proc.stdout)[0]["completions"]), name
    path.write_text(head + "  kfp:\n    base_imag: img:1\n")
    checked = check_source(Source(path.name, without_modeline(path.read_text())))
    [d] = checked.diagnostics
    assert (d.code, d.location.line + 1) == ("PG200", 9) and "did you mean 'base_image'" in d.message
    proc = run_checker(path)
    assert proc.returncode == 0, proc.stderr
    [flagged] = json.loads(proc.stdout)[0]["diagnostics"]
    assert (flagged["message"], flagged["line"]) == ("Property base_imag is not allowed.", 9)
