"""A failed run posts the pipeline's on_failure webhooks once, run through Airflow itself (dag.test())."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipegen.compiler import compile_checked
from pipegen.frontend import check_source
from pipegen.loader import Source


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def test_a_failed_run_posts_its_failure_webhook(
    airflow_db: Path, dags_folder: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    # dag.test() hands the DAG callback the serialized DAG, which has no template environment: the callback
    # raised AttributeError there and nothing was posted.
    from airflow.dag_processing.dagbag import DagBag

    url, received = receiver
    spec = f"""\
pipegen: 1
name: fails
params: {{where: "x"}}
backends:
  here: {{type: local}}
steps:
  - name: boom
    task: {{backend: here, command: [python, -c, "raise SystemExit(3)"]}}
notify:
  on_failure: [{{webhook: "{url}/fail/${{params.where}}"}}]
"""
    result = compile_checked(check_source(Source("fails.yaml", spec)), ["airflow"])
    assert result.ok, [d.format() for d in result.diagnostics]
    (dags_folder / "fails.py").write_text(result.outputs[0].text, encoding="utf-8")
    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    run = bag.dags["fails"].test()
    assert str(run.state) == "failed"
    assert [r["path"] for r in received] == ["/fail/x"]
    assert received[0]["body"]["pipeline"] == "fails"
    assert received[0]["body"]["event"] == "failed"
