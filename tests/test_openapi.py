"""The committed OpenAPI documents equal what the running apps publish."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.export_openapi import OPENAPI_DIR, build_documents, render
from tests.stack import in_process_stack


def test_committed_documents_are_current() -> None:
    for name, document in build_documents().items():
        committed = (OPENAPI_DIR / name).read_text(encoding="utf-8")
        assert committed == render(document), (
            f"openapi/{name} is stale: run python scripts/export_openapi.py"
        )


def test_gateway_serves_the_committed_merged_document(sqlite_url: str) -> None:
    with in_process_stack(sqlite_url) as client:
        served = client.get("/openapi.json", headers={"X-API-Key": ""})
    assert served.status_code == 200
    committed = json.loads((OPENAPI_DIR / "pilotmatch.json").read_text(encoding="utf-8"))
    assert served.json() == committed


def test_merged_document_is_complete_for_clients() -> None:
    document = json.loads((Path(OPENAPI_DIR) / "pilotmatch.json").read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    operation_ids = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            if path.startswith("/v1/"):
                assert operation["security"] == [{"ApiKeyAuth": []}], (path, method)
                assert {"401", "500"} <= set(operation["responses"]), (path, method)
            assert operation.get("summary"), (path, method)
    assert len(operation_ids) == len(set(operation_ids)), "operation IDs are unique"
    for required in (
        "/v1/platforms",
        "/v1/manufacturers",
        "/v1/demands",
        "/v1/import",
        "/v1/industry-chains",
        "/v1/changes",
        "/healthz",
        "/readyz",
    ):
        assert required in document["paths"], required
