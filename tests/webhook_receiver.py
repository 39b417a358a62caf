"""A real HTTP receiver on loopback for webhook tests: answers 503 to its first ``fail_first``
requests, 200 afterwards, and records every request (headers and body)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    fail_first: int = 0
    hang_seconds: float = 0.0  # answer this late (a receiver that hangs)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        _, port = self.server.server_address[:2]
        return f"http://127.0.0.1:{port}/hooks"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.answered == 200]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    answer = 503 if len(receiver.requests) < receiver.fail_first else 200
                    receiver.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, answer)
                    )
                if receiver.hang_seconds:
                    time.sleep(receiver.hang_seconds)
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _Server(ThreadingHTTPServer):
    # Stopping never waits for a handler that hangs on purpose.
    daemon_threads = True
    block_on_close = False
