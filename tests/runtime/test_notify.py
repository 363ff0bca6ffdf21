"""notify against a real HTTP server on 127.0.0.1 that fails before it succeeds."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.notify import notify
from pipegen.runtime.templating import Values


class Hook:
    """A webhook receiver that answers 503 for the first `failures` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, object]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append(json.loads(body))
                status = 503 if len(hook.bodies) <= hook.failures else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook(request: pytest.FixtureRequest) -> Iterator[Hook]:
    receiver = Hook(getattr(request, "param", 0))
    yield receiver
    receiver.server.shutdown()


@pytest.mark.parametrize("hook", [2], indirect=True)
def test_transient_failures_are_retried(hook: Hook) -> None:
    assert notify(webhooks=[hook.url], message={"event": "promoted", "version": "3"}) == {"sent": 1}
    assert len(hook.bodies) == 3
    assert hook.bodies[-1] == {"event": "promoted", "version": "3"}


@pytest.mark.parametrize("hook", [100], indirect=True)
def test_persistent_failure_is_a_clear_error(hook: Hook) -> None:
    with pytest.raises(RuntimeFailure, match=r"webhook notification failed after 4 retries: .*/hook: HTTP 503"):
        notify(webhooks=[hook.url], message={"event": "failed"})
    assert len(hook.bodies) == 5


def test_unreachable_webhook_is_a_clear_error() -> None:
    with pytest.raises(RuntimeFailure, match=r"http://127\.0\.0\.1:9/x: ConnectionError"):
        notify(webhooks=["http://127.0.0.1:9/x"], message={})


def test_a_rendered_secret_in_the_url_is_masked_in_the_error() -> None:
    value = f"tok_{uuid.uuid4().hex}"
    values = Values({}, "run-1", "2026-01-02", {"PIPEGEN_SECRET_HOOK": value})
    url = values.string("http://127.0.0.1:9/hooks/${secret.hook}/rebuild")
    with pytest.raises(RuntimeFailure) as failure:
        notify(webhooks=[url], message={"event": "failed"})
    assert str(failure.value) == (
        "webhook notification failed after 4 retries: http://127.0.0.1:9/hooks/***/rebuild: ConnectionError"
    )


def test_a_token_the_runtime_did_not_render_is_masked_too() -> None:
    # Airflow renders `${secret.X}` from a Variable before the runtime sees the URL.
    with pytest.raises(RuntimeFailure) as failure:
        notify(webhooks=["http://127.0.0.1:9/rebuild?token=tok_live_8f2a9c71d3&run=1"], message={})
    assert str(failure.value).endswith("http://127.0.0.1:9/rebuild?token=***&run=1: ConnectionError")
