"""The change log: every write appends in its transaction; readers page with `after`."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body


def test_every_write_appends_a_change_with_the_resource_state(client: TestClient) -> None:
    platform = client.post("/v1/platforms", json=platform_body()).json()
    client.patch(f"/v1/platforms/{platform['id']}", json={"name": "新名字"})
    client.delete(f"/v1/platforms/{platform['id']}")
    page = client.get("/v1/changes").json()
    assert [(c["version"], c["op"]) for c in page["items"]] == [
        (1, "upsert"),
        (2, "upsert"),
        (3, "delete"),
    ]
    assert page["items"][1]["data"]["name"] == "新名字"
    assert page["items"][2]["data"] is None
    assert page["current_version"] == 3
    assert page["next_after"] == 3


def test_changes_page_with_after_and_limit(client: TestClient) -> None:
    for i in range(5):
        client.post("/v1/demands", json=demand_body(title=f"d{i}"))
    first = client.get("/v1/changes?after=0&limit=2").json()
    assert [c["version"] for c in first["items"]] == [1, 2]
    second = client.get(f"/v1/changes?after={first['next_after']}&limit=10").json()
    assert [c["version"] for c in second["items"]] == [3, 4, 5]
    empty = client.get("/v1/changes?after=5").json()
    assert empty["items"] == [] and empty["next_after"] == 5


def test_page_headers_repeat_where_the_next_page_starts(client: TestClient) -> None:
    """A reader asks for the next page from the headers, before parsing the body."""
    for i in range(3):
        client.post("/v1/demands", json=demand_body(title=f"d{i}"))
    for after, limit in ((0, 2), (2, 2), (3, 2)):
        response = client.get(f"/v1/changes?after={after}&limit={limit}")
        page = response.json()
        assert response.headers["X-Next-After"] == str(page["next_after"])
        assert response.headers["X-Current-Version"] == str(page["current_version"]) == "3"
    assert page["items"] == [] and page["next_after"] == 3


def test_a_failed_write_leaves_no_change(client: TestClient) -> None:
    client.post("/v1/demands", json=demand_body(external_ref="x"))
    assert client.post("/v1/demands", json=demand_body(external_ref="x")).status_code == 409
    assert client.get("/v1/changes").json()["current_version"] == 1


def test_change_data_equals_what_get_returns(client: TestClient) -> None:
    created = client.post("/v1/demands", json=demand_body()).json()
    (change,) = client.get("/v1/changes").json()["items"]
    assert change["data"] == client.get(f"/v1/demands/{created['id']}").json()
