"""Resilient forwarding: retries, circuit breaking, timeouts, headers, trace context, streaming.

Two kinds of upstream: fake ones behind the ``httpx.MockTransport`` seam (exact control of what
the upstream does, in process), and a scripted upstream on a real loopback socket with the gateway
itself under uvicorn, which exercises the production client (aiohttp) end to end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.circuit import CircuitState
from services.gateway.clients import Timeouts
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import RouteTimeouts, parse_traceparent
from tests.gateway.servers import Upstream, free_port, serve
from tests.gateway.test_gateway import ADMIN_KEY, gateway, streamed

KEY = {"X-API-Key": ADMIN_KEY}
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Flaky:
    """A fake upstream that refuses connections ``failures`` times, then answers."""

    def __init__(self, failures: int, error: type[httpx.TransportError] = httpx.ConnectError):
        self.failures = failures
        self.error = error
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if len(self.calls) <= self.failures:
            raise self.error("upstream trouble", request=request)
        return streamed(200, {"ok": True})


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_requests_are_retried_after_connect_errors(method: str) -> None:
    upstream = Flaky(failures=2)
    with gateway(upstream, upstream_retry_backoff_seconds=0.001) as client:
        response = client.request(method, "/v1/platforms/p1", headers=KEY, content=b"{}")
    assert response.status_code == 200
    assert len(upstream.calls) == 3


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_requests_are_never_retried(method: str) -> None:
    upstream = Flaky(failures=1)
    with gateway(upstream, upstream_retry_backoff_seconds=0.001) as client:
        response = client.request(method, "/v1/platforms", headers=KEY, content=b"{}")
    assert response.status_code == 503
    assert len(upstream.calls) == 1


def test_retries_stop_at_the_configured_count() -> None:
    upstream = Flaky(failures=10)
    with gateway(upstream, upstream_retries=2, upstream_retry_backoff_seconds=0.001) as client:
        response = client.get("/v1/platforms", headers=KEY)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert len(upstream.calls) == 3


def test_timeouts_are_not_retried() -> None:
    upstream = Flaky(failures=1, error=httpx.ReadTimeout)
    with gateway(upstream, upstream_retry_backoff_seconds=0.001) as client:
        response = client.get("/v1/platforms", headers=KEY)
    assert response.status_code == 504
    assert len(upstream.calls) == 1


def test_a_broken_answer_is_502_and_not_retried() -> None:
    upstream = Flaky(failures=1, error=httpx.RemoteProtocolError)
    with gateway(upstream, upstream_retry_backoff_seconds=0.001) as client:
        response = client.get("/v1/platforms", headers=KEY)
    assert response.status_code == 502
    assert len(upstream.calls) == 1


# --- circuit breaker ------------------------------------------------------------------------


def test_open_circuit_answers_503_without_touching_the_upstream() -> None:
    upstream = Flaky(failures=2)
    settings = {"upstream_retries": 0, "circuit_failure_threshold": 2}
    with gateway(upstream, circuit_reset_seconds=30, **settings) as client:
        assert client.get("/v1/platforms", headers=KEY).status_code == 503
        assert client.get("/v1/platforms", headers=KEY).status_code == 503
        response = client.get("/v1/platforms", headers={**KEY, "X-Request-ID": "open-1"})
    assert response.status_code == 503
    assert len(upstream.calls) == 2, "the open circuit kept the third request at the gateway"
    problem = response.json()
    assert problem["status"] == 503
    assert problem["request_id"] == "open-1"
    assert "catalog" in problem["detail"]
    assert 1 <= int(response.headers["retry-after"]) <= 30


def test_circuit_half_opens_after_the_cool_down_and_closes_on_success() -> None:
    upstream = Flaky(failures=2)
    settings = {"upstream_retries": 0, "circuit_failure_threshold": 2}
    with gateway(upstream, circuit_reset_seconds=0.2, **settings) as client:
        client.get("/v1/platforms", headers=KEY)
        client.get("/v1/platforms", headers=KEY)
        assert client.get("/v1/platforms", headers=KEY).status_code == 503
        assert len(upstream.calls) == 2
        time.sleep(0.25)
        assert client.get("/v1/platforms", headers=KEY).status_code == 200, "the trial call"
        assert client.get("/v1/platforms", headers=KEY).status_code == 200, "closed again"
    assert len(upstream.calls) == 4


def test_each_upstream_has_its_own_circuit() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "catalog.test":
            raise httpx.ConnectError("down", request=request)
        return streamed(200, {"results": []})

    settings = {"upstream_retries": 0, "circuit_failure_threshold": 1}
    with gateway(handler, **settings) as client:
        assert client.get("/v1/platforms", headers=KEY).status_code == 503
        assert client.get("/v1/platforms", headers=KEY).status_code == 503
        assert client.get("/v1/demands/d1/matches", headers=KEY).status_code == 200
    assert calls == ["catalog.test", "matching.test"]


# --- headers and trace context --------------------------------------------------------------

HOP_BY_HOP_REQUEST = {
    "Connection": "keep-alive, X-Client-Hop",
    "X-Client-Hop": "secret",
    "Keep-Alive": "timeout=5",
    "TE": "trailers",
    "Trailer": "X-Checksum",
    "Proxy-Authorization": "Basic eDp5",
    "Proxy-Connection": "keep-alive",
    "Upgrade": "h2c",
}
HOP_BY_HOP_RESPONSE = {
    "Connection": "X-Upstream-Hop",
    "X-Upstream-Hop": "secret",
    "Keep-Alive": "timeout=5",
    "Proxy-Authenticate": "Basic",
    "Trailer": "X-Checksum",
    "Upgrade": "h2c",
}


def test_hop_by_hop_headers_are_dropped_both_ways() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streamed(200, {}, headers={**HOP_BY_HOP_RESPONSE, "X-Kept": "down"})

    with gateway(handler) as client:
        response = client.get(
            "/v1/platforms", headers={**KEY, **HOP_BY_HOP_REQUEST, "X-Kept": "up"}
        )
    (request,) = seen
    for name in HOP_BY_HOP_REQUEST:
        assert name not in request.headers, f"{name} went upstream"
    assert request.headers["x-kept"] == "up"
    for name in HOP_BY_HOP_RESPONSE:
        assert name not in response.headers, f"{name} came back"
    assert response.headers["x-kept"] == "down"


def test_request_id_and_a_new_traceparent_go_upstream() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streamed(200, {})

    with gateway(handler) as client:
        client.get("/v1/platforms", headers={**KEY, "X-Request-ID": "trace-1"})
        client.get("/v1/platforms", headers={**KEY, "tracestate": "vendor=1"})
    first, second = seen
    assert first.headers["x-request-id"] == "trace-1"
    match = TRACEPARENT.match(first.headers["traceparent"])
    assert match and match.group(3) == "01", "a new trace, sampled"
    assert first.headers["traceparent"] != second.headers["traceparent"]
    assert "tracestate" not in second.headers, "no tracestate without a valid traceparent"


def test_a_valid_traceparent_keeps_its_trace_id_with_a_new_span() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streamed(200, {})

    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    with gateway(handler) as client:
        client.get("/v1/platforms", headers={**KEY, "traceparent": incoming, "tracestate": "a=1"})
    (request,) = seen
    match = TRACEPARENT.match(request.headers["traceparent"])
    assert match is not None
    trace_id, span_id, flags = match.groups()
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert span_id != "00f067aa0ba902b7", "the gateway is a hop of its own"
    assert flags == "00", "the caller's sampling decision stands"
    assert request.headers["tracestate"] == "a=1"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", False),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_traceparent_validation(value: str, valid: bool) -> None:
    assert (parse_traceparent(value) is not None) is valid


def test_route_timeouts_pick_the_import_matching_and_report_budgets() -> None:
    timeouts = RouteTimeouts(
        default=Timeouts(1, 10),
        import_=Timeouts(1, 120),
        matching=Timeouts(1, 8),
        report=Timeouts(1, 90),
    )
    assert timeouts.for_path("/v1/reports/coverage").read == 90
    assert timeouts.for_path("/v1/import").read == 120
    assert timeouts.for_path("/v1/demands/d1/matches").read == 8
    assert timeouts.for_path("/v1/match").read == 8
    assert timeouts.for_path("/v1/demands/d1").read == 10
    assert timeouts.for_path("/v1/platforms").read == 10


# --- the production client on real sockets --------------------------------------------------


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def real(upstream: Upstream) -> Iterator[str]:
    """The gateway under uvicorn on loopback, in front of the scripted upstream."""
    with serve(upstream.app()) as upstream_url:
        settings = GatewaySettings(
            environment="test",
            admin_key=ADMIN_KEY,
            catalog_url=upstream_url,
            matching_url=upstream_url,
            upstream_timeout_seconds=0.5,
            import_timeout_seconds=5,
            matching_timeout_seconds=0.5,
            report_timeout_seconds=5,
        )
        with serve(create_app(settings)) as gateway_url:
            yield gateway_url


def test_real_hop_forwards_method_encoded_path_query_and_body(
    real: str, upstream: Upstream
) -> None:
    body = os.urandom(300_000)
    response = httpx.put(
        real + "/v1/echo?q=%E5%B9%B3%E5%8F%B0&limit=5",
        content=body,
        headers={**KEY, "X-Request-ID": "real-1", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert response.headers["x-request-id"] == "real-1"
    (seen,) = upstream.seen
    assert (seen.method, seen.path, seen.query) == (
        "PUT",
        "/v1/echo",
        "q=%E5%B9%B3%E5%8F%B0&limit=5",
    )
    assert seen.header("x-request-id") == "real-1"
    assert seen.header("content-type") == "application/octet-stream"
    assert seen.header("x-api-key") is None
    assert TRACEPARENT.match(seen.header("traceparent") or "")


def test_real_hop_streams_a_chunked_request_body(real: str, upstream: Upstream) -> None:
    parts = [os.urandom(64 * 1024) for _ in range(40)]  # 2.5 MiB, no Content-Length

    def chunks() -> Iterator[bytes]:
        yield from parts

    response = httpx.post(real + "/v1/echo", content=chunks(), headers=KEY)
    assert response.status_code == 200
    assert response.json()["size"] == sum(map(len, parts))
    assert response.json()["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


def test_real_hop_drops_hop_by_hop_headers_both_ways(real: str, upstream: Upstream) -> None:
    headers = {**KEY, "Connection": "keep-alive, X-Client-Hop", "X-Client-Hop": "secret"}
    headers.update({"Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic eDp5"})
    response = httpx.get(real + "/v1/echo", headers=headers)
    assert response.status_code == 200
    (seen,) = upstream.seen
    for name in ("x-client-hop", "keep-alive", "proxy-authorization"):
        assert seen.header(name) is None, f"{name} went upstream"
    for name in ("x-upstream-hop", "keep-alive", "proxy-authenticate"):
        assert name not in response.headers, f"{name} came back"
    assert response.headers["x-kept"] == "yes"
    assert response.headers.get("connection", "keep-alive") == "keep-alive"


def test_real_hop_streams_a_large_answer_as_it_arrives(real: str, upstream: Upstream) -> None:
    digest = hashlib.sha256()
    size = 0
    with httpx.stream("GET", real + "/v1/big", headers=KEY, timeout=20) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            # The upstream sends the rest only after this: a buffering gateway would stall here.
            upstream.first_chunk_received.set()
            digest.update(chunk)
            size += len(chunk)
    assert size == len(upstream.big_chunk) * upstream.big_chunks
    expected = hashlib.sha256(upstream.big_chunk * upstream.big_chunks).hexdigest()
    assert digest.hexdigest() == expected


def test_real_hop_times_out_within_the_route_budget(real: str) -> None:
    started = time.monotonic()
    response = httpx.get(real + "/v1/slow?seconds=3", headers={**KEY, "X-Request-ID": "slow-1"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "slow-1"
    assert 0.4 <= elapsed < 1.5, f"504 after {elapsed:.2f} s for a 0.5 s budget"


def test_real_hop_gives_import_its_longer_budget(real: str) -> None:
    response = httpx.post(real + "/v1/import?seconds=1", headers=KEY, content=b"{}", timeout=10)
    assert response.status_code == 200, "1 s is over the default 0.5 s but within import's 5 s"


def test_real_hop_gives_reports_their_longer_budget(real: str) -> None:
    slow = {"seconds": "1"}  # over matching's 0.5 s, within the report's 5 s
    report = httpx.get(real + "/v1/reports/coverage", params=slow, headers=KEY, timeout=10)
    assert report.status_code == 200, report.text
    match = httpx.post(real + "/v1/match", params=slow, headers=KEY, content=b"{}", timeout=10)
    assert match.status_code == 504


def test_real_unreachable_upstream_is_503_after_retries() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        environment="test",
        admin_key=ADMIN_KEY,
        catalog_url=closed,
        matching_url=closed,
        upstream_retry_backoff_seconds=0.01,
    )
    with serve(create_app(settings)) as gateway_url:
        response = httpx.get(gateway_url + "/v1/platforms", headers=KEY)
        ready = httpx.get(gateway_url + "/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert ready.status_code == 503
    assert "unreachable" in ready.json()["reason"]


def test_real_readiness_follows_the_upstreams(real: str) -> None:
    response = httpx.get(real + "/readyz")
    assert response.status_code == 200, response.text
    assert json.loads(response.text)["status"] == "ready"


def test_a_caller_hanging_up_mid_upload_does_not_count_against_the_upstream(
    upstream: Upstream,
) -> None:
    with serve(upstream.app()) as upstream_url:
        settings = GatewaySettings(
            environment="test",
            admin_key=ADMIN_KEY,
            catalog_url=upstream_url,
            matching_url=upstream_url,
            circuit_failure_threshold=1,
        )
        app = create_app(settings)
        with serve(app) as gateway_url:
            port = int(gateway_url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    b"POST /v1/echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
                    + f"X-API-Key: {ADMIN_KEY}\r\n\r\n4\r\nabcd\r\n".encode()
                )
                time.sleep(0.2)
            time.sleep(0.3)
            assert app.state.upstreams["catalog"].circuit.state is CircuitState.CLOSED
            assert httpx.get(gateway_url + "/v1/echo", headers=KEY).status_code == 200
