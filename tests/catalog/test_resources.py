"""Create, read, update and delete every catalog resource over HTTP, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body


def test_create_platform_returns_201_with_server_fields(client: TestClient) -> None:
    response = client.post("/v1/platforms", json=platform_body(external_ref="p-1"))
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("plt_")
    assert body["external_ref"] == "p-1"
    assert body["kind"] == "platform"
    assert body["version"] == 1
    assert body["warnings"] == []
    assert body["created_at"].endswith(("+00:00", "Z"))
    assert response.headers["location"] == f"/v1/platforms/{body['id']}"
    fetched = client.get(f"/v1/platforms/{body['id']}").json()
    assert fetched["name"] == "松山湖固态电池研发中试平台"
    assert fetched["stages"] == ["小试", "中试"]
    assert fetched["level"] == "省级"


def test_chain_alias_is_stored_as_canonical_name(client: TestClient) -> None:
    body = client.post(
        "/v1/platforms", json=platform_body(industry_chains=["New Energy", "半導體"])
    ).json()
    assert body["industry_chains"] == ["新能源", "半导体及集成电路"]
    assert body["warnings"] == []


def test_near_miss_chain_is_corrected_with_a_warning(client: TestClient) -> None:
    body = client.post("/v1/demands", json=demand_body(industry_chains=["新能原"])).json()
    assert body["industry_chains"] == ["新能源"]
    assert [w["code"] for w in body["warnings"]] == ["industry_chain_corrected"]


def test_unknown_chain_is_kept_as_tag_and_named_in_warnings(client: TestClient) -> None:
    response = client.post(
        "/v1/manufacturers", json=platform_body(industry_chains=["低空经济", "新能源"], level=None)
    )
    assert response.status_code == 201
    body = response.json()
    assert body["industry_chains"] == ["新能源"]
    assert "低空经济" in body["tags"]
    (warning,) = body["warnings"]
    assert warning["code"] == "unresolved_industry_chain"
    assert warning["value"] == "低空经济"
    assert warning["suggestions"], "an unresolved chain comes with the nearest chains"


def test_platforms_and_manufacturers_are_separate_collections(client: TestClient) -> None:
    platform = client.post("/v1/platforms", json=platform_body()).json()
    assert client.get(f"/v1/manufacturers/{platform['id']}").status_code == 404
    assert client.get("/v1/manufacturers").json()["items"] == []


def test_patch_changes_only_given_fields_and_bumps_version(client: TestClient) -> None:
    created = client.post("/v1/platforms", json=platform_body()).json()
    response = client.patch(
        f"/v1/platforms/{created['id']}", json={"district": "滨海湾新区", "level": None}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["district"] == "滨海湾新区"
    assert body["level"] is None
    assert body["name"] == created["name"]
    assert body["version"] == created["version"] + 1
    assert body["updated_at"] >= created["updated_at"]


def test_patch_that_changes_nothing_keeps_the_version(client: TestClient) -> None:
    created = client.post("/v1/platforms", json=platform_body()).json()
    body = client.patch(f"/v1/platforms/{created['id']}", json={"district": "松山湖"}).json()
    assert body["version"] == created["version"]
    assert client.get("/v1/changes").json()["current_version"] == created["version"]


def test_patch_refuses_null_for_required_field(client: TestClient) -> None:
    created = client.post("/v1/platforms", json=platform_body()).json()
    response = client.patch(f"/v1/platforms/{created['id']}", json={"name": None})
    assert response.status_code == 422
    assert client.get(f"/v1/platforms/{created['id']}").json()["name"] == created["name"]


def test_delete_returns_version_and_removes(client: TestClient) -> None:
    created = client.post("/v1/demands", json=demand_body()).json()
    response = client.delete(f"/v1/demands/{created['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "deleted": True, "version": 2}
    assert client.get(f"/v1/demands/{created['id']}").status_code == 404
    assert client.delete(f"/v1/demands/{created['id']}").status_code == 404


def test_duplicate_external_ref_is_409_and_stores_nothing(client: TestClient) -> None:
    assert client.post("/v1/demands", json=demand_body(external_ref="d-1")).status_code == 201
    response = client.post("/v1/demands", json=demand_body(external_ref="d-1", title="another"))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert len(client.get("/v1/demands").json()["items"]) == 1


def test_same_external_ref_is_allowed_across_resources(client: TestClient) -> None:
    assert client.post("/v1/platforms", json=platform_body(external_ref="x")).status_code == 201
    assert client.post("/v1/manufacturers", json=platform_body(external_ref="x")).status_code == 201


def test_patch_to_taken_external_ref_is_409(client: TestClient) -> None:
    client.post("/v1/demands", json=demand_body(external_ref="a"))
    second = client.post("/v1/demands", json=demand_body(external_ref="b")).json()
    response = client.patch(f"/v1/demands/{second['id']}", json={"external_ref": "a"})
    assert response.status_code == 409


def test_demand_fields_round_trip(client: TestClient) -> None:
    body = demand_body(
        external_ref="ent-1",
        stage=None,
        district=None,
        needs_voucher=False,
        required_certifications=["ISO 13485", "ISO 13485"],
    )
    created = client.post("/v1/demands", json=body).json()
    assert created["stage"] is None
    assert created["district"] is None
    assert created["required_certifications"] == ["ISO 13485"], "lists are de-duplicated"
    assert client.get(f"/v1/demands/{created['id']}").json()["title"] == body["title"]


def test_equipment_record_joins_its_owners_equipment_list(client: TestClient) -> None:
    owner = client.post("/v1/platforms", json=platform_body(equipment=[])).json()
    response = client.post(
        "/v1/equipment",
        json={
            "supplier_id": owner["id"],
            "name": "激光直写设备",
            "model": "DWL 66+",
            "specs": ["最小线宽0.6μm"],
            "availability": "工作日预约",
        },
    )
    assert response.status_code == 201
    equipment = response.json()
    assert equipment["supplier_id"] == owner["id"]
    assert client.get(f"/v1/platforms/{owner['id']}").json()["equipment"] == ["激光直写设备"]

    renamed = client.patch(f"/v1/equipment/{equipment['id']}", json={"name": "无掩膜光刻机"})
    assert renamed.status_code == 200
    assert client.get(f"/v1/platforms/{owner['id']}").json()["equipment"] == ["无掩膜光刻机"]

    assert client.delete(f"/v1/equipment/{equipment['id']}").status_code == 200
    assert client.get(f"/v1/platforms/{owner['id']}").json()["equipment"] == []


def test_supplier_patch_keeps_registered_equipment_with_a_warning(client: TestClient) -> None:
    owner = client.post("/v1/manufacturers", json=platform_body(equipment=["旧设备"])).json()
    client.post("/v1/equipment", json={"supplier_id": owner["id"], "name": "贴片机"})
    body = client.patch(f"/v1/manufacturers/{owner['id']}", json={"equipment": []}).json()
    assert body["equipment"] == ["贴片机"]
    assert body["warnings"][0]["code"] == "registered_equipment_kept"


def test_equipment_needs_an_existing_supplier(client: TestClient) -> None:
    response = client.post("/v1/equipment", json={"supplier_id": "plt_missing", "name": "x"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "supplier_id"


def test_solution_belongs_to_a_platform_not_a_manufacturer(client: TestClient) -> None:
    manufacturer = client.post("/v1/manufacturers", json=platform_body()).json()
    platform = client.post("/v1/platforms", json=platform_body()).json()
    solution = {
        "title": "固态电池中试套餐",
        "industry_chains": ["新能源"],
        "stages": ["中试"],
        "typical_duration_days": 60,
        "price_min_cny": 50000,
        "price_max_cny": 200000,
    }
    refused = client.post("/v1/solutions", json={**solution, "platform_id": manufacturer["id"]})
    assert refused.status_code == 422
    created = client.post("/v1/solutions", json={**solution, "platform_id": platform["id"]})
    assert created.status_code == 201
    assert created.json()["platform_id"] == platform["id"]


def test_solution_price_range_must_be_ordered(client: TestClient) -> None:
    platform = client.post("/v1/platforms", json=platform_body()).json()
    bad = client.post(
        "/v1/solutions",
        json={"platform_id": platform["id"], "title": "t", "price_min_cny": 10, "price_max_cny": 1},
    )
    assert bad.status_code == 422
    good = client.post(
        "/v1/solutions",
        json={"platform_id": platform["id"], "title": "t", "price_min_cny": 1, "price_max_cny": 10},
    ).json()
    patched = client.patch(f"/v1/solutions/{good['id']}", json={"price_min_cny": 11})
    assert patched.status_code == 422


def test_deleting_a_supplier_removes_its_equipment_and_solutions(client: TestClient) -> None:
    platform = client.post("/v1/platforms", json=platform_body()).json()
    equipment = client.post("/v1/equipment", json={"supplier_id": platform["id"], "name": "e"})
    solution = client.post("/v1/solutions", json={"platform_id": platform["id"], "title": "s"})
    assert client.delete(f"/v1/platforms/{platform['id']}").status_code == 200
    assert client.get(f"/v1/equipment/{equipment.json()['id']}").status_code == 404
    assert client.get(f"/v1/solutions/{solution.json()['id']}").status_code == 404
    deleted = {
        (c["resource"], c["id"])
        for c in client.get("/v1/changes?limit=100").json()["items"]
        if c["op"] == "delete"
    }
    assert ("equipment", equipment.json()["id"]) in deleted
    assert ("solution", solution.json()["id"]) in deleted
    assert ("platform", platform["id"]) in deleted


def test_industry_chains_lists_the_taxonomy(client: TestClient) -> None:
    items = client.get("/v1/industry-chains").json()["items"]
    assert len(items) == 13
    names = {item["name"] for item in items}
    assert {"新能源", "下一代移动通信（6G）", "具身智能"} <= names
    assert all(item["code"] and item["name_en"] for item in items)
    semiconductors = next(item for item in items if item["code"] == "SEMICONDUCTOR_IC")
    assert "抗蚀剂" in semiconductors["subfield_aliases"]["光刻胶"]
    assert all(set(item["subfield_aliases"]) <= set(item["subfields"]) for item in items)
