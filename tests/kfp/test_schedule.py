"""The recurring-run file is a KFP v2beta1 RecurringRun body, and the schedule fires at the spec's local times."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source
from pipegen.targets.kfp.cron_shift import shift_cron
from tests.cases import GOLDEN
from tests.kfp.test_compile import load

SCHEDULES = sorted((GOLDEN / "kfp").glob("*.schedule.json"))


def strict(data: Any, klass: str) -> Any:
    """Load data as kfp_server_api's model `klass`, rejecting what the models would silently drop."""
    import kfp_server_api
    from kfp_server_api import models

    match = re.fullmatch(r"(list\[(?P<item>.+)\]|dict\([^,]+, (?P<value>.+)\))", klass)
    if match and match["item"]:
        assert isinstance(data, list), f"{klass}: expected a list, got {data!r}"
        return [strict(v, match["item"]) for v in data]
    if match and match["value"]:
        assert isinstance(data, dict), f"{klass}: expected an object, got {data!r}"
        return {k: strict(v, match["value"]) for k, v in data.items()}
    model = getattr(models, klass, None)
    if model is None:  # a primitive: str, int, bool, object, datetime
        return kfp_server_api.ApiClient().deserialize(_Response(data), klass)
    if getattr(model, "allowable_values", None):
        assert data in model.allowable_values, f"{klass}: {data!r} is not one of {model.allowable_values}"
        return data
    assert isinstance(data, dict), f"{klass}: expected an object, got {data!r}"
    known = {json_key: attr for attr, json_key in model.attribute_map.items()}
    unknown = sorted(set(data) - set(known))
    assert not unknown, f"{klass} has no field {unknown}; it has {sorted(known)}"
    return model(**{known[k]: strict(v, model.openapi_types[known[k]]) for k, v in data.items()})


class _Response:
    """What ApiClient.deserialize reads: a body with a .data JSON text."""

    def __init__(self, value: Any) -> None:
        self.data = json.dumps(value)


@pytest.mark.parametrize("path", SCHEDULES, ids=lambda p: p.stem)
def test_schedule_files_are_recurring_run_bodies(path: Path) -> None:
    doc = json.loads(path.read_text())
    run = strict(doc, "V2beta1RecurringRun")
    assert run.trigger.cron_schedule.cron.startswith("0 ")  # KFP's cron has a seconds field first
    assert run.no_catchup is True and run.mode == "ENABLE"
    assert run.pipeline_version_reference is None and run.pipeline_spec is None  # added when submitting


def test_a_misspelt_key_is_rejected() -> None:
    doc = json.loads(SCHEDULES[0].read_text())
    doc["trigger"]["cron_schedule"]["timezone"] = "UTC"
    with pytest.raises(AssertionError, match=r"V2beta1CronSchedule has no field \['timezone'\]"):
        strict(doc, "V2beta1RecurringRun")
    doc = json.loads(SCHEDULES[0].read_text())
    doc["no_catchpu"] = True
    with pytest.raises(AssertionError, match=r"V2beta1RecurringRun has no field \['no_catchpu'\]"):
        strict(doc, "V2beta1RecurringRun")


@pytest.fixture
def kfp_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP endpoint on 127.0.0.1 that records the requests kfp.Client sends (there is no KFP server here)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: dict[str, Any]) -> None:
            text = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def do_GET(self) -> None:  # healthz, asked by the client on start-up
            self._answer({"multi_user": False})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "body": body})
            self._answer(body)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("HOME", str(tmp_path))  # kfp reads ~/.config/kfp/context.json
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()


def test_the_file_is_what_kfp_client_sends(kfp_api: tuple[str, list[dict[str, Any]]]) -> None:
    import kfp

    host, received = kfp_api
    doc = json.loads((GOLDEN / "kfp" / "feed-ranking.schedule.json").read_text())
    cron = doc["trigger"]["cron_schedule"]
    kfp.Client(host=host).create_recurring_run(
        experiment_id="exp-1",
        job_name=doc["display_name"],
        description=doc["description"],
        start_time=cron["start_time"],
        cron_expression=cron["cron"],
        max_concurrency=doc["max_concurrency"],
        no_catchup=doc["no_catchup"],
        params=doc["runtime_config"]["parameters"],
        pipeline_id="pipeline-1",
        version_id="version-1",
    )
    [request] = received
    assert request["path"] == "/apis/v2beta1/recurringruns"
    sent = request["body"]
    assert sent.pop("experiment_id") == "exp-1"
    assert sent.pop("pipeline_version_reference") == {"pipeline_id": "pipeline-1", "pipeline_version_id": "version-1"}
    assert sent == doc


def compile_spec(text: str) -> tuple[list[str], dict[str, str]]:
    result = compile_checked(check_source(Source("tz.yaml", text)), ["kfp"])
    assert result.ok, [d.format() for d in result.diagnostics]
    return [d.format() for d in result.diagnostics], {o.path: o.text for o in result.outputs}


def tz_spec(timezone: str, cron: str = "0 2 * * *", extra: str = "") -> str:
    return (
        "pipegen: 1\nname: tz\n"
        f'schedule: {{cron: "{cron}", timezone: {timezone}, start: 2026-01-01}}\n'
        f"targets: {{kfp: {{base_image: 'registry.example.com/ml/pipegen-runtime:0.1'{extra}}}}}\n"
        "steps:\n  - {name: a, task: {command: [echo, '${run.date}']}}\n"
    )


def test_a_daylight_saving_zone_is_converted_with_a_located_warning() -> None:
    diagnostics, outputs = compile_spec(tz_spec("America/Los_Angeles"))
    assert diagnostics == [
        "tz.yaml:3:41: warning[PG702]: target 'kfp' cannot follow daylight saving time in America/Los_Angeles: "
        "KFP's scheduler reads crons in UTC (targets.kfp.scheduler_timezone), so cron '0 2 * * *' becomes "
        "'0 10 * * *' there (converted with the standard-time offset); it fires at 02:00 local time in standard "
        "time (UTC-08:00) and at 03:00 in daylight time (UTC-07:00); hint: use a timezone with a fixed UTC offset, or "
        "set the KFP installation's CRON_SCHEDULE_TIMEZONE to the spec's timezone and targets.kfp.scheduler_timezone "
        "to match"
    ]
    doc = json.loads(outputs["kfp/tz.schedule.json"])
    # 02:00 PST; the start date's midnight is 08:00 UTC there.
    assert doc["trigger"]["cron_schedule"] == {"cron": "0 0 10 * * *", "start_time": "2026-01-01T08:00:00Z"}


def test_a_fixed_offset_zone_is_converted_exactly() -> None:
    diagnostics, outputs = compile_spec(tz_spec("Asia/Kolkata"))
    assert diagnostics == []
    assert json.loads(outputs["kfp/tz.schedule.json"])["trigger"]["cron_schedule"]["cron"] == "0 30 20 * * *"


def test_a_scheduler_in_the_specs_zone_takes_the_cron_as_written() -> None:
    spec = tz_spec("America/Los_Angeles", extra=", scheduler_timezone: America/Los_Angeles")
    diagnostics, outputs = compile_spec(spec)
    assert diagnostics == []
    assert json.loads(outputs["kfp/tz.schedule.json"])["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"


def test_a_cron_with_many_times_in_a_daylight_saving_zone() -> None:
    diagnostics, _ = compile_spec(tz_spec("Europe/Paris", cron="*/30 8-17 * * 1-5"))
    assert diagnostics[0].endswith(
        "it fires at the cron's local times in standard time (UTC+01:00) and 60 minutes later in daylight time "
        "(UTC+02:00); hint: use a timezone with a fixed UTC offset, or set the KFP installation's "
        "CRON_SCHEDULE_TIMEZONE to the spec's timezone and targets.kfp.scheduler_timezone to match"
    )
    assert "becomes '0,30 7,8,9,10,11,12,13,14,15,16 * * 1-5'" in diagnostics[0]


def test_a_cron_that_cannot_move_says_when_it_fires() -> None:
    diagnostics, _ = compile_spec(tz_spec("Asia/Kolkata", cron="0 2 1 * *"))
    assert len(diagnostics) == 1
    assert "cannot move cron '0 2 1 * *' from Asia/Kolkata exactly" in diagnostics[0]
    assert "fires at those times in UTC, not in Asia/Kolkata" in diagnostics[0]


def test_run_date_is_the_date_in_the_schedules_zone(tmp_path: Path) -> None:
    _, outputs = compile_spec(tz_spec("America/Los_Angeles"))
    module_path = tmp_path / "tz.py"
    module_path.write_text(outputs["kfp/tz.py"])
    context = load(module_path).pipegen_context.python_func
    # 10:00 UTC on 8 March 2026 is 02:00 in Los Angeles; 05:00 UTC is still the 7th there.
    assert context(pipegen_run_key="k", pipegen_schedule_time="2026-03-08T10:00:00Z").run_date == "2026-03-08"
    assert context(pipegen_run_key="k", pipegen_schedule_time="2026-03-08T05:00:00Z").run_date == "2026-03-07"


@pytest.mark.parametrize(
    ("cron", "minutes", "expected"),
    [
        ("0 2 * * *", -480, "0 10 * * *"),
        ("0 2 * * *", 330, "30 20 * * *"),
        ("15 23 * * 1-5", -120, "15 1 * * 2,3,4,5,6"),
        ("0 0 * * 0", 60, "0 23 * * 6"),
        ("*/15 * * * *", 330, "0,15,30,45 * * * *"),
        ("0 */6 * * *", 60, "0 5,11,17,23 * * *"),
        ("0 2 1 * *", 330, None),  # crosses midnight on a day of the month
        ("0 1,23 * * 1", -120, None),  # only some firings cross midnight
        ("0 2 * * MON", 60, "0 1 * * MON"),
        ("0 0 * * MON", 60, None),
    ],
)
def test_shift_cron(cron: str, minutes: int, expected: str | None) -> None:
    assert shift_cron(cron, minutes) == expected
