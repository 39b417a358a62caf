"""The coverage report through the gateway, on the demo catalog: it finds the chains without
platforms by computation."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.catalog.demo_loader import demo_catalog, load_demo
from services.catalog.repository import CatalogRepository
from services.catalog.service import CatalogService
from services.matching.coverage import CSV_COLUMNS
from services.shared.taxonomy import load_taxonomy
from tests.stack import in_process_stack


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    with in_process_stack(sqlite_url) as client:
        yield client


def load_demo_catalog(api: TestClient) -> int:
    catalog = api.app_state["catalog"]  # type: ignore[attr-defined]
    with catalog.state.db.transaction(write=True) as session:
        summary = load_demo(CatalogService(CatalogRepository(session), load_taxonomy()))
    return summary.version


def chains_no_demo_platform_lists() -> set[str]:
    taxonomy = load_taxonomy()
    listed = {
        resolution.chain.name
        for platform in demo_catalog()["platforms"]
        for label in platform.get("industry_chains", [])
        if (resolution := taxonomy.resolve(label)).chain is not None
    }
    return {chain.name for chain in taxonomy.chains} - listed


def test_demo_report_names_the_chains_without_platforms(api: TestClient) -> None:
    version = load_demo_catalog(api)
    response = api.get("/v1/reports/coverage", params={"min_version": version})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    report = response.json()
    assert report["index_version"] >= version
    expected = chains_no_demo_platform_lists()
    assert set(report["chains_without_platform"]) == expected
    assert {"纺织服装鞋帽", "下一代移动通信（6G）"} <= expected
    demo = demo_catalog()
    assert sum(c["platforms"]["total"] for c in report["chains"]) >= len(demo["platforms"])
    open_total = sum(c["demands"]["open"] for c in report["chains"])
    assert open_total + report["demands_without_chain"]["open"] >= len(demo["demands"])


def test_report_as_csv_by_accept_header_or_format(api: TestClient) -> None:
    version = load_demo_catalog(api)
    by_accept = api.get(
        "/v1/reports/coverage",
        params={"min_version": version},
        headers={"Accept": "text/csv"},
    )
    assert by_accept.status_code == 200, by_accept.text
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert int(by_accept.headers["x-index-version"]) >= version
    assert by_accept.headers["x-report-threshold"] == "1.1"
    rows = list(csv.DictReader(io.StringIO(by_accept.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    no_platform = {r["chain"] for r in rows if r["sub_field"] == "" and r["platforms"] == "0"}
    assert no_platform == chains_no_demo_platform_lists()
    by_format = api.get("/v1/reports/coverage", params={"format": "csv", "threshold": 0.5})
    assert by_format.headers["content-type"].startswith("text/csv")
    assert by_format.headers["x-report-threshold"] == "0.5"


def test_report_parameters_are_validated(api: TestClient) -> None:
    for params in ({"threshold": -1}, {"format": "xml"}, {"colour": "red"}):
        response = api.get("/v1/reports/coverage", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"].startswith("application/problem+json")


def test_report_needs_the_match_read_scope(api: TestClient) -> None:
    keys = {}
    for scope in ("catalog:read", "match:read"):
        created = api.post("/v1/admin/keys", json={"label": scope, "scopes": [scope]})
        assert created.status_code == 201, created.text
        keys[scope] = created.json()["key"]
    url = "/v1/reports/coverage"
    # min_version 0: wait for the index's first build instead of racing it (a 503 meanwhile).
    params = {"min_version": 0}
    assert (
        api.get(url, params=params, headers={"X-API-Key": keys["catalog:read"]}).status_code == 403
    )
    allowed = api.get(url, params=params, headers={"X-API-Key": keys["match:read"]})
    assert allowed.status_code == 200, allowed.text
