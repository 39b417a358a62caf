"""Graceful shutdown: SIGTERM lets the request in flight finish, then the process exits 0."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from services.catalog import migrate
from tests.catalog.conftest import platform_body
from tests.test_cli import free_port, wait_until_ready

PILOTMATCH = str(Path(sys.executable).parent / "pilotmatch")


def test_sigterm_during_a_request_lets_it_complete(tmp_path: Path) -> None:
    database = tmp_path / "catalog.db"
    migrate.upgrade(f"sqlite:///{database}")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "LOG_FORMAT": "text"}
    process = subprocess.Popen(
        [PILOTMATCH, "serve", "catalog", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process, timeout=30)
        # An import long enough to be in flight when the signal arrives.
        body = {
            "platforms": [platform_body(external_ref=f"p{i}", name=f"平台{i}") for i in range(4000)]
        }
        payload = json.dumps(body, ensure_ascii=False).encode()
        result: dict[str, object] = {}

        def call() -> None:
            try:
                response = httpx.post(
                    base + "/v1/import",
                    content=payload,
                    headers={"content-type": "application/json"},
                    timeout=60,
                )
                result["status"] = response.status_code
                result["created"] = response.json()["created"]["platforms"]
            except Exception as exc:
                result["error"] = repr(exc)

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.3)
        assert caller.is_alive(), "the import finished before the signal: make it larger"
        process.send_signal(signal.SIGTERM)
        caller.join(timeout=60)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert result == {"status": 200, "created": 4000}, output
    # uvicorn re-raises the signal once it has shut down cleanly, as a process should.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM suppliers").fetchone()[0] == 4000
