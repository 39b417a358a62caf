"""Faults, with the real processes: a killed catalog, a killed matching, a slow upstream.

Each test starts the services as ``pilotmatch serve`` processes on loopback (``bench.load.Stack``),
kills one with SIGKILL (no shutdown, as when a machine dies) and checks what callers of the
gateway see meanwhile and after the restart; the load and its no-loss check are those of
``bench/load.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.load import Load, LoadRecord, Stack, catalog_version, server_errors, verify
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.gateway.servers import serve
from tests.gateway.test_gateway import ADMIN_KEY

PROBLEM = "application/problem+json"
DEMAND = {"title": "负载测试 中试平台 工艺验证", "industry_chains": ["新能源", "新材料"]}
# A short circuit reset, so the gateway tries the restarted catalog within a second.
GATEWAY_ENV = {"CIRCUIT_RESET_SECONDS": "1"}


async def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``condition`` (sync or async) until it is true; fail naming ``what`` if it is not."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        await asyncio.sleep(0.05)


def client_for(stack: Stack, timeout: float = 20.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.headers, timeout=timeout)


async def index_status(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/index")
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- the catalog dies mid-load ----------------------------------------------------------------


def test_killed_catalog_is_503_while_matches_go_on_and_nothing_is_missed_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    with Stack(database_url, tmp_path, env={"gateway": GATEWAY_ENV}) as stack:
        asyncio.run(_kill_catalog_mid_load(stack))


async def _kill_catalog_mid_load(stack: Stack) -> None:
    async with client_for(stack) as client:
        load = Load(client, clients=8, ops=100_000, seed=11)
        running = asyncio.create_task(load.run())
        record = load.record
        acknowledged = lambda: record.count(lambda o: o.acknowledged)  # noqa: E731
        await until(lambda: acknowledged() >= 60, 30, "60 acknowledged writes")
        before_kill = await catalog_version(client)
        # Matching has the writes so far (read-your-writes through min_version).
        caught_up = await client.post("/v1/match", params={"min_version": before_kill}, json=DEMAND)
        assert caught_up.status_code == 200, caught_up.text

        await asyncio.to_thread(stack.kill, "catalog")
        killed_at = time.monotonic()

        # Catalog routes: 503 problem details, at once (no hang, no 500 or bare 502).
        for method, path in [("GET", "/v1/platforms"), ("POST", "/v1/demands")]:
            started = time.monotonic()
            body = DEMAND if method == "POST" else None
            response = await client.request(method, path, json=body)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["status"] == 503
            assert time.monotonic() - started < 2.0

        # Matching keeps serving its last index and says that it is stale.
        await until(
            lambda: _catalog_unreachable(client), 10, "matching to notice the catalog is gone"
        )
        stale = await client.post("/v1/match", params={"limit": 100}, json=DEMAND)
        assert stale.status_code == 200, stale.text
        assert stale.headers["X-Index-Stale"] == "true"
        assert stale.json()["index_stale"] is True
        assert stale.json()["index_version"] >= before_kill
        assert stale.json()["results"], "the last index still ranks suppliers"
        gateway_ready = await client.get("/readyz")
        assert gateway_ready.status_code == 200
        assert gateway_ready.json()["status"] == "degraded"

        # The load runs on against the dead catalog for a while, then it comes back.
        refused = lambda: record.count(lambda o: o.status == 503)  # noqa: E731
        await until(lambda: refused() >= 20, 20, "writes refused while the catalog is down")
        restarting_at = time.monotonic()
        await asyncio.to_thread(stack.start, "catalog")
        after_restart = acknowledged()
        await until(lambda: acknowledged() >= after_restart + 60, 30, "writes after the restart")
        load.stop()
        await running

        # Matching catches up with the restarted catalog: no change missed.
        version = await catalog_version(client)
        await until(lambda: _index_at(client, version), 15, f"the index to reach version {version}")
        result = await verify(client, record)
        assert result.disagreements == [], stack.log("gateway")
        assert result.index["catalog_reachable"] is True

    _assert_outage_answers(record, killed_at, restarting_at)


async def _catalog_unreachable(client: httpx.AsyncClient) -> bool:
    return (await index_status(client))["catalog_reachable"] is False


async def _index_at(client: httpx.AsyncClient, version: int) -> bool:
    status = await index_status(client)
    return bool(status["catalog_reachable"] and status["version"] >= version)


def _assert_outage_answers(record: LoadRecord, killed_at: float, restarting_at: float) -> None:
    """Every failure is problem details; a write sent while the catalog is dead hears 503."""
    failures = [o for o in record.outcomes if o.status is not None and o.status >= 500]
    assert failures, "the outage was not seen by the load"
    assert all(o.problem_json for o in failures)
    assert record.count(lambda o: o.status is None) == 0, "the gateway always answers"
    during = [o for o in record.outcomes if killed_at < o.sent_at < restarting_at]
    assert during and {o.status for o in during} == {503}
    # Only writes in flight at the moment of the kill may end in another way (broken off).
    others = [o for o in failures if o.status != 503]
    assert all(o.sent_at < killed_at for o in others), [(o.status, o.kind) for o in others]
    assert server_errors(record) == len(failures)


class DyingUpstream:
    """An upstream killed while it handles a request: it answers every request on kept-alive
    connections until one starting with ``die_on`` arrives. That one it reads in full, then it
    stops listening and drops the connection without an answer."""

    def __init__(self, die_on: bytes) -> None:
        self.die_on = die_on
        self.received: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffered = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffered) < length:
                    buffered += connection.recv(65536)
                buffered = buffered[length:]
                request_line = head.split(b"\r\n", 1)[0]
                self.received.append(request_line)
                if request_line.startswith(self.die_on):
                    # Like SIGKILL: nothing listens any more and the connection just ends.
                    self.listener.shutdown(socket.SHUT_RDWR)
                    self.listener.close()
                    return
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 2\r\n\r\n{}"
                )


def test_a_request_the_dying_catalog_received_is_502_not_503() -> None:
    # 503 says "could not reach it": the caller may take it that nothing happened. This delete
    # reached the catalog, which may have committed it before it died: the outcome is unknown.
    upstream = DyingUpstream(die_on=b"DELETE")
    settings = GatewaySettings(
        environment="test",
        admin_key=ADMIN_KEY,
        catalog_url=upstream.url,
        matching_url=upstream.url,
        upstream_retry_backoff_seconds=0.001,
    )
    with (
        serve(create_app(settings)) as gateway,
        httpx.Client(base_url=gateway, headers={"X-API-Key": ADMIN_KEY}) as client,
    ):
        # A first request leaves a kept-alive connection in the gateway's pool.
        assert client.get("/v1/platforms").status_code == 200
        response = client.delete("/v1/platforms/plt_1")
    assert upstream.received.count(b"DELETE /v1/platforms/plt_1 HTTP/1.1") == 1
    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == PROBLEM


# --- matching dies ----------------------------------------------------------------------------


def test_killed_matching_rebuilds_from_the_change_log(sqlite_url: str, tmp_path: Path) -> None:
    with Stack(sqlite_url, tmp_path) as stack:
        asyncio.run(_kill_matching(stack))


async def _kill_matching(stack: Stack) -> None:
    async with client_for(stack) as client:
        first = await Load(client, clients=8, ops=120, seed=5).run()
        version = await catalog_version(client)
        demands = (await client.get("/v1/demands", params={"limit": 1})).json()["items"]
        demand = demands[0]["id"]
        queries = [
            ("POST", "/v1/match", {"kind": "all", "limit": 50}, DEMAND),
            ("GET", f"/v1/demands/{demand}/matches", {"kind": "all", "limit": 50}, None),
        ]
        before = [await _ranked(client, q, version) for q in queries]
        status_before = await index_status(client)

        await asyncio.to_thread(stack.kill, "matching")
        started = time.monotonic()
        gone = await client.post("/v1/match", json=DEMAND)
        assert gone.status_code == 503, gone.text
        assert gone.headers["content-type"] == PROBLEM
        assert time.monotonic() - started < 2.0
        # The catalog serves on without matching.
        assert (await client.get("/v1/platforms")).status_code == 200

        await asyncio.to_thread(stack.start, "matching")  # returns once /readyz is 200
        status = await index_status(client)
        assert status["ready"] is True
        assert status["full_builds"] >= 1
        assert status["version"] == version
        assert status["suppliers"] == status_before["suppliers"]
        assert status["demands"] == status_before["demands"]
        assert [await _ranked(client, q, version) for q in queries] == before

        # It follows the change log again: more writes, then the whole no-loss check.
        second = await Load(client, clients=8, ops=60, seed=6).run()
        record = LoadRecord(first.outcomes + second.outcomes, first.start_version)
        result = await verify(client, record)
        assert result.disagreements == []


async def _ranked(
    client: httpx.AsyncClient, query: tuple[str, str, dict[str, Any], Any], version: int
) -> list[tuple[str, float]]:
    method, path, params, body = query
    response = await client.request(
        method, path, params={**params, "min_version": version}, json=body
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results
    return [(r["supplier_id"], r["score"]) for r in results]


# --- a slow upstream --------------------------------------------------------------------------

UPSTREAM_TIMEOUT = 1.0
MATCHING_TIMEOUT = 1.5
FAILURES_TO_OPEN = 3


def slow_upstream(delay: float) -> Starlette:
    """Ready at once, then takes ``delay`` seconds over every /v1 request."""

    async def slow(request: Request) -> Response:
        await asyncio.sleep(delay)
        return JSONResponse({"items": [], "next_cursor": None})

    async def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    methods = ["GET", "POST", "PATCH", "DELETE"]
    return Starlette(
        routes=[Route("/readyz", ready), Route("/v1/{path:path}", slow, methods=methods)]
    )


@pytest.fixture
def slow_stack(tmp_path: Path) -> Iterator[Stack]:
    """The real gateway in front of an upstream that always answers too late."""
    env = {
        "UPSTREAM_TIMEOUT_SECONDS": str(UPSTREAM_TIMEOUT),
        "MATCHING_TIMEOUT_SECONDS": str(MATCHING_TIMEOUT),
        "CIRCUIT_FAILURE_THRESHOLD": str(FAILURES_TO_OPEN),
        "CIRCUIT_RESET_SECONDS": "30",
    }
    with serve(slow_upstream(delay=10)) as upstream:
        upstreams = {"catalog": upstream, "matching": upstream}
        with Stack("sqlite://", tmp_path, env={"gateway": env}, upstreams=upstreams) as stack:
            yield stack


@pytest.mark.parametrize(
    ("method", "path", "budget"),
    [
        ("GET", "/v1/platforms", UPSTREAM_TIMEOUT),
        ("POST", "/v1/demands", UPSTREAM_TIMEOUT),
        ("POST", "/v1/match", MATCHING_TIMEOUT),
    ],
)
def test_slow_upstream_is_504_within_the_route_budget(
    slow_stack: Stack, method: str, path: str, budget: float
) -> None:
    started = time.monotonic()
    response = httpx.request(
        method,
        slow_stack.gateway_url + path,
        headers={**slow_stack.headers, "X-Request-ID": "slow-1"},
        json=DEMAND if method == "POST" else None,
        timeout=10,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 504
    assert response.json()["request_id"] == "slow-1"
    assert budget - 0.05 <= elapsed <= budget + 0.5, f"504 after {elapsed:.2f} s for {budget} s"


def test_repeated_timeouts_open_the_circuit_and_answers_come_at_once(slow_stack: Stack) -> None:
    url = slow_stack.gateway_url + "/v1/platforms"
    for _ in range(FAILURES_TO_OPEN):
        assert httpx.get(url, headers=slow_stack.headers, timeout=10).status_code == 504
    started = time.monotonic()
    response = httpx.get(url, headers=slow_stack.headers, timeout=10)
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["Retry-After"]) >= 1
    assert time.monotonic() - started < 0.5
