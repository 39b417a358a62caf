"""Through the gateway, as the municipal platform calls us: every resource, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body
from tests.stack import in_process_stack


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    with in_process_stack(database_url) as client:
        yield client


def test_create_list_filter_update_delete_every_resource(api: TestClient) -> None:
    platform = api.post("/v1/platforms", json=platform_body(industry_chains=["New Energy"]))
    assert platform.status_code == 201, platform.text
    platform_id = platform.json()["id"]
    assert platform.json()["industry_chains"] == ["新能源"]

    manufacturer = api.post("/v1/manufacturers", json=platform_body(level=None)).json()
    demand = api.post("/v1/demands", json=demand_body()).json()
    equipment = api.post("/v1/equipment", json={"supplier_id": platform_id, "name": "手套箱"})
    solution = api.post("/v1/solutions", json={"platform_id": platform_id, "title": "电芯试制"})
    assert equipment.status_code == solution.status_code == 201

    for path, item_id in (
        ("/v1/platforms", platform_id),
        ("/v1/manufacturers", manufacturer["id"]),
        ("/v1/demands", demand["id"]),
        ("/v1/equipment", equipment.json()["id"]),
        ("/v1/solutions", solution.json()["id"]),
    ):
        listed = api.get(path, params={"limit": 10}).json()
        assert item_id in [item["id"] for item in listed["items"]], path
        assert api.get(f"{path}/{item_id}").status_code == 200, path

    filtered = api.get("/v1/platforms", params={"chain": "new energy", "district": "松山湖"})
    assert [p["id"] for p in filtered.json()["items"]] == [platform_id]

    patched = api.patch(f"/v1/demands/{demand['id']}", json={"stage": "小试"})
    assert patched.json()["stage"] == "小试"
    assert patched.json()["version"] > demand["version"]

    for path, item_id in (
        ("/v1/solutions", solution.json()["id"]),
        ("/v1/equipment", equipment.json()["id"]),
        ("/v1/demands", demand["id"]),
        ("/v1/manufacturers", manufacturer["id"]),
        ("/v1/platforms", platform_id),
    ):
        assert api.delete(f"{path}/{item_id}").status_code == 200, path
        assert api.get(f"{path}/{item_id}").status_code == 404, path


def test_import_through_the_gateway_is_idempotent(api: TestClient) -> None:
    body = {"platforms": [platform_body(external_ref=f"p{i}") for i in range(3)]}
    first = api.post("/v1/import", json=body).json()
    second = api.post("/v1/import", json=body).json()
    assert first["created"]["platforms"] == 3
    assert second["version"] == first["version"]


def test_problem_details_and_request_id_survive_the_hop(api: TestClient) -> None:
    response = api.post("/v1/demands", json={"title": ""}, headers={"X-Request-ID": "e2e-1"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "e2e-1"
    assert response.json()["request_id"] == "e2e-1", "the catalog saw the same request ID"


def test_changes_feed_through_the_gateway(api: TestClient) -> None:
    created = api.post("/v1/demands", json=demand_body()).json()
    changes = api.get("/v1/changes", params={"after": 0}).json()
    assert [c["id"] for c in changes["items"]] == [created["id"]]


def test_key_is_required_for_every_v1_route(api: TestClient) -> None:
    for path in ("/v1/platforms", "/v1/industry-chains", "/v1/changes", "/v1/demands/x/matches"):
        assert api.get(path, headers={"X-API-Key": ""}).status_code == 401, path
