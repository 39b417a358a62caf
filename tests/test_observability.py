"""Metrics on every service (scraped and parsed as Prometheus does) and structured access logs."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.shared.logging import configure_logging
from tests.catalog.conftest import demand_body, platform_body
from tests.stack import ADMIN_KEY, call_upstream, in_process_stack

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    with in_process_stack(sqlite_url, rate_limit_per_minute=60, rate_limit_burst_seconds=1) as c:
        yield c


def test_gateway_counts_requests_rejections_and_upstream_errors(api: TestClient) -> None:
    api.get("/v1/platforms")
    api.get("/v1/platforms/plt_missing")
    key = api.post("/v1/admin/keys", json={"label": "m", "scopes": ["catalog:read"]}).json()["key"]
    api.get("/v1/platforms", headers={"X-API-Key": key})
    api.get("/v1/platforms", headers={"X-API-Key": key})  # over the 1-request burst
    response = api.get("/metrics", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = parse(response.text)
    assert (
        value(samples, "pilotmatch_http_requests_total", route="/v1/platforms", status="200") >= 2
    )
    assert (
        value(samples, "pilotmatch_http_requests_total", route="/v1/platforms/{id}", status="404")
        == 1
    )
    assert value(samples, "pilotmatch_http_requests_total", status="429") == 1
    assert value(samples, "pilotmatch_rate_limit_rejections_total") == 1
    assert (
        value(samples, "pilotmatch_http_request_duration_seconds_count", route="/v1/platforms") >= 2
    )


def test_catalog_reports_requests_and_database_pool(api: TestClient) -> None:
    api.post("/v1/demands", json=demand_body())
    samples = parse(call_upstream(api, "catalog", "GET", "/metrics").text)
    assert value(samples, "pilotmatch_http_requests_total", method="POST", route="/v1/demands") == 1
    assert "pilotmatch_db_pool_connections" in samples


def test_matching_reports_index_size_lag_and_rank_time(api: TestClient) -> None:
    version = api.post("/v1/platforms", json=platform_body()).json()["version"]
    api.post("/v1/match", params={"min_version": version}, json=demand_body())
    samples = parse(call_upstream(api, "matching", "GET", "/metrics").text)
    assert value(samples, "pilotmatch_index", measure="platforms") == 1
    assert value(samples, "pilotmatch_index", measure="version") >= version
    assert value(samples, "pilotmatch_index", measure="lag") >= 0
    assert value(samples, "pilotmatch_rank_seconds_count") == 1


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    original = sys.stderr
    sys.stderr = stream
    try:
        configure_logging("gateway", "INFO", "json")
    finally:
        sys.stderr = original
    yield stream
    logging.getLogger().handlers[:] = []


def test_access_log_is_one_json_line_per_request_without_keys(
    sqlite_url: str, log_stream: io.StringIO
) -> None:
    with in_process_stack(sqlite_url) as api:
        api.get("/v1/platforms", headers={"X-Request-ID": "log-1"})
        api.post(
            "/v1/demands", json=demand_body(title="保密的标题"), headers={"X-Request-ID": "log-2"}
        )
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "pilotmatch.access"]
    first = [line for line in access if line["request_id"] == "log-1"]
    assert first, "an access line carries the caller's request ID"
    assert {"method", "path", "route", "status", "duration_ms", "ts", "level"} <= set(first[0])
    assert {line["status"] for line in first} == {200}
    text = log_stream.getvalue()
    assert ADMIN_KEY not in text, "API keys never reach the logs"
    assert "保密的标题" not in text, "request bodies never reach the logs"
