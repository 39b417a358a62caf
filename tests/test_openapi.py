"""The committed OpenAPI documents equal what the running apps publish, and are complete."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from scripts.export_openapi import OPENAPI_DIR, build_documents, render
from services.gateway.auth import required_scope
from services.shared.openapi import HTTP_METHODS, SCOPE_DESCRIPTIONS
from tests.stack import in_process_stack

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _merged() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (OPENAPI_DIR / "pilotmatch.json").read_text(encoding="utf-8")
    )
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


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
    assert served.json() == _merged()


def test_gateway_serves_docs_pages_pointing_at_the_merged_document(sqlite_url: str) -> None:
    with in_process_stack(sqlite_url) as client:
        client.headers.pop("X-API-Key")
        swagger = client.get("/docs")
        redoc = client.get("/redoc")
    assert swagger.status_code == 200
    assert swagger.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in swagger.text
    assert "url: '/openapi.json'" in swagger.text
    assert redoc.status_code == 200
    assert 'spec-url="/openapi.json"' in redoc.text


def test_every_public_operation_names_its_scope() -> None:
    document = _merged()
    scheme = document["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    for scope in SCOPE_DESCRIPTIONS:
        assert f"`{scope}`" in scheme["description"]
    for path, method, operation in _operations(document):
        if not path.startswith("/v1/"):
            assert "security" not in operation, (path, method)
            continue
        scope = required_scope(method.upper(), path)
        assert operation["security"] == [{"ApiKeyAuth": [scope]}], (path, method)
        assert operation["x-required-scope"] == scope, (path, method)
        assert f"`{scope}`" in operation["description"], (path, method)
    scopes = {op.get("x-required-scope") for _p, _m, op in _operations(document)} - {None}
    assert scopes == set(SCOPE_DESCRIPTIONS)


def test_every_error_is_a_problem_and_the_gateway_errors_are_documented() -> None:
    document = _merged()
    schemas = document["components"]["schemas"]
    assert {"Problem", "ProblemField"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"] == PROBLEM_CONTENT, (path, method, status)
            assert response.get("description"), (path, method, status)
        if path.startswith("/v1/"):
            expected = {"401", "403", "429", "500", "502", "503", "504"}
            if "requestBody" in operation:
                expected |= {"413", "422"}
            assert expected <= set(responses), (path, method, expected - set(responses))
            assert "Retry-After" in responses["429"]["headers"]


def test_request_bodies_have_chinese_and_english_examples() -> None:
    document = _merged()
    bodies = 0
    for path, method, operation in _operations(document):
        if "requestBody" not in operation:
            continue
        bodies += 1
        examples = operation["requestBody"]["content"]["application/json"]["examples"]
        assert set(examples) == {"zh", "en"}, (path, method)
        assert _CJK.search(json.dumps(examples["zh"]["value"], ensure_ascii=False)), (path, method)
        english = json.dumps(examples["en"]["value"], ensure_ascii=False)
        assert re.search(r"[A-Za-z]{4,} [A-Za-z]{2,}", english), (path, method)
    assert bodies >= 10


def test_operations_have_stable_ids_summaries_and_described_tags() -> None:
    document = _merged()
    assert document["openapi"].startswith("3.1")
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    operation_ids = []
    for path, method, operation in _operations(document):
        operation_ids.append(operation["operationId"])
        assert operation.get("summary"), (path, method)
        assert operation["tags"] and set(operation["tags"]) <= described, (path, method)
    assert len(operation_ids) == len(set(operation_ids)), "operation IDs are unique"
    for stable in (
        "createPlatform",
        "listPlatforms",
        "getPlatform",
        "updatePlatform",
        "deletePlatform",
        "createDemand",
        "matchDemand",
        "matchAdHoc",
        "importCatalog",
        "listIndustryChains",
        "createApiKey",
    ):
        assert stable in operation_ids, stable
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


@pytest.mark.parametrize("name", ["catalog.json", "matching.json"])
def test_service_documents_answer_errors_as_problems_only(name: str) -> None:
    document = json.loads((OPENAPI_DIR / name).read_text(encoding="utf-8"))
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"] == PROBLEM_CONTENT, (name, path, method, status)
