"""Technology brokers (技术经纪人): CRUD, validation, list filters, and assigning one to a demand,
on both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body


def broker_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "李敏",
        "organization": "东莞市技术转移中心",
        "district": "松山湖",
        "industry_chains": ["New Energy", "新材料"],
        "tags": ["固态电池"],
        "certification_level": "高级",
        "work_email": "limin@example.org",
    }
    body.update(overrides)
    return body


def test_create_broker_resolves_chains_and_returns_server_fields(client: TestClient) -> None:
    response = client.post("/v1/brokers", json=broker_body(external_ref="tb-1"))
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("brk_")
    assert body["industry_chains"] == ["新能源", "新材料"]
    assert body["certification_level"] == "高级"
    assert body["active"] is True
    assert body["work_phone"] is None
    assert body["version"] == 1
    assert response.headers["location"] == f"/v1/brokers/{body['id']}"
    assert client.get(f"/v1/brokers/{body['id']}").json()["work_email"] == "limin@example.org"


def test_unknown_broker_chain_is_kept_as_tag_with_a_warning(client: TestClient) -> None:
    body = client.post("/v1/brokers", json=broker_body(industry_chains=["低空经济"])).json()
    assert body["industry_chains"] == []
    assert "低空经济" in body["tags"]
    assert [w["code"] for w in body["warnings"]] == ["unresolved_industry_chain"]


def test_broker_fields_are_validated(client: TestClient) -> None:
    for bad in (
        {"certification_level": "特级"},
        {"work_email": "not-an-email"},
        {"work_phone": "call me"},
        {"active": "yes"},
        {"home_address": "不收集"},
    ):
        response = client.post("/v1/brokers", json=broker_body(**bad))
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"], bad


def test_broker_work_email_refuses_control_zero_width_and_bidi_characters(
    client: TestClient,
) -> None:
    # The address pattern allows anything but whitespace and '@': NUL was a 500 on PostgreSQL
    # (its text cannot hold it) and stored as is on SQLite, like a bidi override or a ZWSP.
    existing = client.post("/v1/brokers", json=broker_body()).json()
    for email in (
        "li\u0000min@example.org",
        "moc.\u202eevil@example.org",
        "li\u200bmin@example.org",
    ):
        created = client.post("/v1/brokers", json=broker_body(work_email=email))
        assert created.status_code == 422, (email, created.text)
        assert created.json()["errors"][0]["loc"] == ["work_email"]
        patched = client.patch(f"/v1/brokers/{existing['id']}", json={"work_email": email})
        assert patched.status_code == 422, (email, patched.text)
    assert client.get("/v1/brokers").json()["items"] == [
        {k: v for k, v in existing.items() if k != "warnings"}
    ]


def test_broker_patch_delete_and_change_log(client: TestClient) -> None:
    broker = client.post("/v1/brokers", json=broker_body()).json()
    patched = client.patch(
        f"/v1/brokers/{broker['id']}", json={"active": False, "work_email": None}
    ).json()
    assert patched["active"] is False
    assert patched["work_email"] is None
    assert patched["version"] == broker["version"] + 1
    deleted = client.delete(f"/v1/brokers/{broker['id']}").json()
    assert client.get(f"/v1/brokers/{broker['id']}").status_code == 404
    changes = client.get("/v1/changes").json()["items"]
    assert [(c["resource"], c["op"]) for c in changes] == [
        ("broker", "upsert"),
        ("broker", "upsert"),
        ("broker", "delete"),
    ]
    assert changes[1]["data"]["active"] is False
    assert changes[-1]["version"] == deleted["version"]


def test_broker_list_filters_by_chain_district_and_level(client: TestClient) -> None:
    senior = client.post("/v1/brokers", json=broker_body()).json()
    junior = client.post(
        "/v1/brokers",
        json=broker_body(
            name="陈杰",
            district="长安镇",
            industry_chains=["新一代电子信息"],
            certification_level="初级",
        ),
    ).json()

    def ids(query: str) -> list[str]:
        response = client.get(f"/v1/brokers?{query}")
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids("chain=New%20Energy") == [senior["id"]]
    assert ids("chain=新一代电子信息") == [junior["id"]]
    assert ids("district=长安镇") == [junior["id"]]
    assert ids("certification_level=高级") == [senior["id"]]
    assert ids("active=true") == [senior["id"], junior["id"]]
    assert ids("limit=1") == [senior["id"]]
    assert client.get("/v1/brokers?certification_level=特级").status_code == 422


def test_broker_list_pages_with_a_cursor(client: TestClient) -> None:
    created = [
        client.post("/v1/brokers", json=broker_body(name=f"经纪人{i}")).json()["id"]
        for i in range(3)
    ]
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        query = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = client.get("/v1/brokers", params=query).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created


def test_demand_can_be_assigned_an_existing_broker_and_cleared(client: TestClient) -> None:
    broker = client.post("/v1/brokers", json=broker_body()).json()
    demand = client.post("/v1/demands", json=demand_body(broker_id=broker["id"]))
    assert demand.status_code == 201
    demand_id = demand.json()["id"]
    assert demand.json()["broker_id"] == broker["id"]
    listed = client.get(f"/v1/demands?broker_id={broker['id']}").json()["items"]
    assert [d["id"] for d in listed] == [demand_id]
    cleared = client.patch(f"/v1/demands/{demand_id}", json={"broker_id": None})
    assert cleared.status_code == 200
    assert cleared.json()["broker_id"] is None
    assert client.get(f"/v1/demands/{demand_id}").json()["broker_id"] is None


def test_demand_without_broker_has_null_broker_id(client: TestClient) -> None:
    assert client.post("/v1/demands", json=demand_body()).json()["broker_id"] is None


def test_demand_naming_a_missing_broker_is_422_and_stores_nothing(client: TestClient) -> None:
    response = client.post("/v1/demands", json=demand_body(broker_id="brk_0000000000000000"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "broker_id"
    assert client.get("/v1/demands").json()["items"] == []
    demand = client.post("/v1/demands", json=demand_body()).json()
    patched = client.patch(f"/v1/demands/{demand['id']}", json={"broker_id": "brk_missing"})
    assert patched.status_code == 422
    assert client.get(f"/v1/demands/{demand['id']}").json()["broker_id"] is None


def test_deleting_a_broker_unassigns_its_demands_in_the_change_log(client: TestClient) -> None:
    broker = client.post("/v1/brokers", json=broker_body()).json()
    demand = client.post("/v1/demands", json=demand_body(broker_id=broker["id"])).json()
    before = client.get("/v1/changes").json()["current_version"]
    client.delete(f"/v1/brokers/{broker['id']}")
    assert client.get(f"/v1/demands/{demand['id']}").json()["broker_id"] is None
    changes = client.get(f"/v1/changes?after={before}").json()["items"]
    assert [(c["resource"], c["id"], c["op"]) for c in changes] == [
        ("demand", demand["id"], "upsert"),
        ("broker", broker["id"], "delete"),
    ]
    assert changes[0]["data"]["broker_id"] is None


def test_import_checks_a_demands_broker(client: TestClient) -> None:
    broker = client.post("/v1/brokers", json=broker_body()).json()
    report = client.post(
        "/v1/import",
        json={
            "demands": [
                demand_body(external_ref="d-1", broker_id=broker["id"]),
                demand_body(external_ref="d-2", broker_id="brk_missing"),
            ]
        },
    ).json()
    assert report["created"]["demands"] == 1
    (rejected,) = report["rejected"]
    assert (rejected["index"], rejected["errors"][0]["field"]) == (1, "broker_id")
    (stored,) = client.get("/v1/demands").json()["items"]
    assert stored["broker_id"] == broker["id"]
