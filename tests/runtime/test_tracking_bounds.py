"""A tracking server that accepts connections and never answers is given up on within the stated bound."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.evaluate import evaluate
from pipegen.runtime.tracking import call_bound_seconds


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts every connection, reads nothing and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_the_bound_follows_the_retry_settings() -> None:
    # MLflow's own defaults held a call for minutes; pipegen's defaults hold it under a minute.
    assert call_bound_seconds({}) < 60
    settings = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    }
    # 6 attempts of 30 s, then sleeps of 4+1, 8+1, 16+1, 32+1 s.
    assert call_bound_seconds(settings) == 6 * 30 + 4 + 8 + 16 + 32 + 4


def test_a_silent_server_fails_the_call_within_the_bound(silent_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    bound = call_bound_seconds()
    assert bound == 3 * 2 + 2
    started = time.monotonic()
    with pytest.raises(RuntimeFailure) as failure:
        evaluate(run_id="0" * 32, thresholds=["auc > 0.5"], tracking_uri=silent_server)
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert f"cannot reach the MLflow tracking server at {silent_server}" in message
    assert re.search(r"each attempt bounded by 2 s \(at most 8 s per call", message), message
    # The call really gave up: not held for MLflow's default minutes (slack for a loaded machine).
    assert elapsed < bound + 20, elapsed
