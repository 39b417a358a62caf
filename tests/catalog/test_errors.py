"""Problem details for every failure, request IDs on every response."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from services.catalog.app import create_app
from tests.catalog.conftest import catalog_settings, platform_body


def _is_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_validation_error_names_every_field_at_fault(client: TestClient) -> None:
    response = client.post(
        "/v1/platforms",
        json={
            "name": "",
            "stages": ["量产"],
            "level": "县级",
            "accepts_vouchers": "maybe",
            "id": "plt_forged",
        },
    )
    body = _is_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "stages[0]", "level", "accepts_vouchers", "id"}


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/demands", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    body = _is_problem(response, 400)
    assert body["errors"][0]["field"] == "body"


def test_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    _is_problem(client.post("/v1/demands", json=["a"]), 422)


def test_unknown_id_is_404(client: TestClient) -> None:
    body = _is_problem(client.get("/v1/platforms/plt_nope"), 404)
    assert "plt_nope" in body["detail"]


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    _is_problem(client.get("/v1/widgets"), 404)


def test_wrong_method_is_405_problem(client: TestClient) -> None:
    _is_problem(client.put("/v1/platforms", json={}), 405)


def test_body_over_the_limit_is_413_and_stores_nothing(database_url: str) -> None:
    with TestClient(create_app(catalog_settings(database_url, max_body_bytes=2048))) as client:
        big = platform_body(description="长" * 1500)
        _is_problem(client.post("/v1/platforms", json=big), 413)
        assert client.get("/v1/platforms").json()["items"] == []
        assert client.post("/v1/platforms", json=platform_body()).status_code == 201


def test_chunked_body_over_the_limit_is_413(database_url: str) -> None:
    with TestClient(create_app(catalog_settings(database_url, max_body_bytes=2048))) as client:
        payload = json.dumps(platform_body(description="长" * 1500)).encode()

        def chunks():  # type: ignore[no-untyped-def]
            for i in range(0, len(payload), 500):
                yield payload[i : i + 500]

        response = client.post(
            "/v1/platforms", content=chunks(), headers={"content-type": "application/json"}
        )
        _is_problem(response, 413)


def test_import_has_its_own_larger_body_limit(database_url: str) -> None:
    settings = catalog_settings(database_url, max_body_bytes=2048, max_import_body_bytes=100_000)
    with TestClient(create_app(settings)) as client:
        body = {"platforms": [platform_body(external_ref=f"p{i}") for i in range(10)]}
        assert client.post("/v1/import", json=body).status_code == 200


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/v1/platforms", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = client.get("/v1/platforms")
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != client.get("/v1/platforms").headers["x-request-id"]


@pytest.mark.parametrize("hostile", ["a b", "x" * 200, "<script>", "é".encode()])
def test_unsafe_request_id_is_replaced(client: TestClient, hostile: str | bytes) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": hostile})
    assert response.headers["x-request-id"] != hostile


def test_error_bodies_carry_the_request_id(client: TestClient) -> None:
    response = client.get("/v1/platforms/plt_nope", headers={"X-Request-ID": "req-42"})
    assert response.json()["request_id"] == "req-42"


def test_unexpected_error_is_500_problem_without_internals(database_url: str) -> None:
    app = create_app(catalog_settings(database_url))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-500"})
        body = _is_problem(response, 500)
        assert "secret internal detail" not in response.text
        assert body["request_id"] == "req-500"
        assert response.headers["x-request-id"] == "req-500"


def test_control_and_bidi_characters_in_names_are_refused(client: TestClient) -> None:
    for name in ("平台\x00", "平台\u202e", "平\u200b台"):
        _is_problem(client.post("/v1/platforms", json=platform_body(name=name)), 422)
    assert client.get("/v1/platforms").json()["items"] == []


def test_health_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
