"""A local HTTP receiver for the scenarios' webhooks: it keeps every POST, by the engine named in its path."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Listens on 127.0.0.1; a POST to /<engine>/<rest> is recorded under <engine> as {path, body}."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                engine, _, rest = self.path.lstrip("/").partition("/")
                with lock:
                    received.setdefault(engine, []).append({"path": "/" + rest, "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, engine: str) -> str:
        """The base URL an engine's webhooks go to (the scenarios append their own path)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/{engine}"

    def take(self, engine: str) -> list[dict[str, Any]]:
        """The webhooks this engine sent since the last take, and forget them."""
        return self.received.pop(engine, [])

    def stop(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()
