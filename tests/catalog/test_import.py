"""POST /v1/import: upsert by external_ref, per-item rejections, idempotency."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.catalog.app import create_app
from tests.catalog.conftest import catalog_settings, demand_body, platform_body


def _body(n_platforms: int = 2, n_demands: int = 1) -> dict:
    return {
        "platforms": [
            platform_body(external_ref=f"P{i}", name=f"平台{i}") for i in range(n_platforms)
        ],
        "manufacturers": [platform_body(external_ref="M0", name="代工厂", level=None)],
        "demands": [demand_body(external_ref=f"D{i}", title=f"需求{i}") for i in range(n_demands)],
    }


def test_import_creates_everything_and_reports_counts(client: TestClient) -> None:
    response = client.post("/v1/import", json=_body())
    assert response.status_code == 200
    report = response.json()
    assert report["created"] == {"platforms": 2, "manufacturers": 1, "demands": 1}
    assert report["received"] == {"platforms": 2, "manufacturers": 1, "demands": 1}
    assert report["rejected"] == []
    assert report["version"] == 4
    assert len(client.get("/v1/platforms").json()["items"]) == 2


def test_importing_the_same_body_twice_changes_nothing(client: TestClient) -> None:
    first = client.post("/v1/import", json=_body()).json()
    second = client.post("/v1/import", json=_body()).json()
    assert second["version"] == first["version"]
    assert second["created"] == {"platforms": 0, "manufacturers": 0, "demands": 0}
    assert second["unchanged"] == {"platforms": 2, "manufacturers": 1, "demands": 1}
    assert client.get("/v1/changes?limit=1000").json()["current_version"] == first["version"]


def test_import_updates_changed_items_by_external_ref(client: TestClient) -> None:
    client.post("/v1/import", json=_body())
    body = _body()
    body["platforms"][0]["district"] = "滨海湾新区"
    report = client.post("/v1/import", json=body).json()
    assert report["updated"]["platforms"] == 1
    assert report["unchanged"]["platforms"] == 1
    assert report["version"] == 5
    items = client.get("/v1/platforms", params={"district": "滨海湾新区"}).json()["items"]
    assert [item["external_ref"] for item in items] == ["P0"]


def test_import_keeps_valid_items_and_reports_each_rejected_one(client: TestClient) -> None:
    body = _body(n_platforms=3)
    body["platforms"][1]["stages"] = ["大批量"]
    del body["platforms"][2]["name"]
    body["demands"].append("not an object")
    body["demands"].append(demand_body(title="no ref"))
    report = client.post("/v1/import", json=body).json()
    assert report["created"] == {"platforms": 1, "manufacturers": 1, "demands": 1}
    rejected = {(r["list"], r["index"]): r for r in report["rejected"]}
    assert set(rejected) == {("platforms", 1), ("platforms", 2), ("demands", 1), ("demands", 2)}
    assert rejected[("platforms", 1)]["external_ref"] == "P1"
    assert rejected[("platforms", 1)]["errors"][0]["field"] == "stages[0]"
    assert rejected[("platforms", 2)]["errors"][0]["field"] == "name"
    assert rejected[("demands", 2)]["errors"][0]["field"] == "external_ref"


def test_import_rejects_a_repeated_external_ref_within_a_list(client: TestClient) -> None:
    body = {"platforms": [platform_body(external_ref="same"), platform_body(external_ref="same")]}
    report = client.post("/v1/import", json=body).json()
    assert report["created"]["platforms"] == 1
    assert report["rejected"][0]["index"] == 1
    assert report["rejected"][0]["errors"][0]["type"] == "duplicate"


def test_import_resolves_chains_and_warns_per_item(client: TestClient) -> None:
    body = {"demands": [demand_body(external_ref="D", industry_chains=["New Energy", "低空经济"])]}
    report = client.post("/v1/import", json=body).json()
    (warning,) = report["warnings"]
    assert (warning["list"], warning["index"], warning["value"]) == ("demands", 0, "低空经济")
    (item,) = client.get("/v1/demands").json()["items"]
    assert item["industry_chains"] == ["新能源"]
    assert "低空经济" in item["tags"]


def test_import_over_the_item_limit_is_413_and_stores_nothing(database_url: str) -> None:
    settings = catalog_settings(database_url, max_import_items=3)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/import", json=_body(n_platforms=3))
        assert response.status_code == 413
        assert client.get("/v1/platforms").json()["items"] == []


def test_import_of_unknown_list_is_422(client: TestClient) -> None:
    response = client.post("/v1/import", json={"widgets": []})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "widgets"


def test_import_writes_one_change_per_created_item(client: TestClient) -> None:
    client.post("/v1/import", json=_body())
    changes = client.get("/v1/changes").json()["items"]
    assert [c["version"] for c in changes] == [1, 2, 3, 4]
    assert {c["resource"] for c in changes} == {"platform", "manufacturer", "demand"}
    assert all(c["op"] == "upsert" and c["data"]["id"] == c["id"] for c in changes)


def test_a_large_import_stores_every_field_exactly(client: TestClient) -> None:
    # Large enough for the bulk path (COPY on PostgreSQL), with nulls and lists in the mix.
    platforms = [
        platform_body(
            external_ref=f"bulk-{i}",
            name=f"平台{i}",
            level=None if i % 2 else "市级",
            tags=[f"标签{i}", "共用"],
            certifications=[] if i % 3 else ["CNAS"],
            equipment=[],
        )
        for i in range(300)
    ]
    report = client.post("/v1/import", json={"platforms": platforms}).json()
    assert report["created"]["platforms"] == 300
    items = []
    cursor = None
    while True:
        page = client.get(
            "/v1/platforms", params={"limit": 100, **({"cursor": cursor} if cursor else {})}
        ).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    by_ref = {item["external_ref"]: item for item in items}
    assert len(by_ref) == 300
    for i in (0, 1, 2, 3, 299):
        item, sent = by_ref[f"bulk-{i}"], platforms[i]
        for field in ("name", "level", "tags", "certifications", "stages", "industry_chains"):
            assert item[field] == sent[field], (i, field)
        assert item["created_at"].endswith(("Z", "+00:00"))
    changes = client.get("/v1/changes", params={"limit": 1000}).json()
    assert len(changes["items"]) == 300
    assert changes["items"][-1]["data"] == by_ref["bulk-299"]
    assert client.get("/v1/platforms", params={"tag": "共用", "certification": "CNAS"}).json()[
        "items"
    ]
