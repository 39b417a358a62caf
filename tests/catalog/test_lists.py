"""Cursor pagination and filters of the list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body


def _ids(response_json: dict) -> list[str]:
    return [item["id"] for item in response_json["items"]]


def test_pages_cover_every_item_once_in_creation_order(client: TestClient) -> None:
    created = [
        client.post("/v1/platforms", json=platform_body(name=f"平台{i}")).json()["id"]
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/platforms?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json()
        seen.extend(_ids(page))
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    assert pages == 3


def test_exact_page_has_no_next_cursor(client: TestClient) -> None:
    for i in range(2):
        client.post("/v1/demands", json=demand_body(title=f"d{i}"))
    assert client.get("/v1/demands?limit=2").json()["next_cursor"] is None


def test_limit_outside_range_is_422(client: TestClient) -> None:
    for limit in (0, 101, -1):
        response = client.get(f"/v1/platforms?limit={limit}")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.limit"


def test_garbage_cursor_is_422_naming_the_field(client: TestClient) -> None:
    for cursor in ("garbage", "Yzox", "-1", "YzE6LTU"):
        response = client.get(f"/v1/platforms?cursor={cursor}")
        assert response.status_code == 422, cursor
        assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"]
        assert response.headers["content-type"] == "application/problem+json"


def test_unknown_query_parameter_is_422(client: TestClient) -> None:
    response = client.get("/v1/platforms?colour=red")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.colour"


def test_filter_by_chain_accepts_aliases(client: TestClient) -> None:
    energy = client.post("/v1/platforms", json=platform_body(industry_chains=["新能源"])).json()
    client.post("/v1/platforms", json=platform_body(industry_chains=["食品饮料"]))
    for label in ("新能源", "New Energy", "new energy"):
        assert _ids(client.get("/v1/platforms", params={"chain": label}).json()) == [energy["id"]]


def test_filter_by_unknown_chain_is_422_with_suggestions(client: TestClient) -> None:
    response = client.get("/v1/platforms", params={"chain": "低空经济"})
    assert response.status_code == 422
    assert "nearest" in response.json()["errors"][0]["message"]


def test_filters_by_district_stage_voucher_level_certification_tag(client: TestClient) -> None:
    match = client.post(
        "/v1/manufacturers",
        json=platform_body(
            district="长安镇",
            stages=["小批量试产"],
            accepts_vouchers=True,
            level=None,
            certifications=["ISO 13485"],
            tags=["注塑"],
        ),
    ).json()
    client.post(
        "/v1/manufacturers",
        json=platform_body(
            district="虎门镇",
            stages=["中试"],
            accepts_vouchers=False,
            level=None,
            certifications=["ISO 9001"],
            tags=["服装"],
        ),
    )
    for params in (
        {"district": "长安镇"},
        {"stage": "小批量试产"},
        {"accepts_vouchers": "true"},
        {"certification": "ISO 13485"},
        {"tag": "注塑"},
        {"district": "长安镇", "stage": "小批量试产", "tag": "注塑"},
    ):
        assert _ids(client.get("/v1/manufacturers", params=params).json()) == [match["id"]], params
    assert client.get("/v1/manufacturers", params={"stage": "概念验证"}).json()["items"] == []


def test_filter_by_level(client: TestClient) -> None:
    national = client.post("/v1/platforms", json=platform_body(level="国家级")).json()
    client.post("/v1/platforms", json=platform_body(level="市级"))
    assert _ids(client.get("/v1/platforms", params={"level": "国家级"}).json()) == [national["id"]]
    assert client.get("/v1/platforms", params={"level": "县级"}).status_code == 422


def test_text_search_looks_in_name_description_and_tags(client: TestClient) -> None:
    by_name = client.post("/v1/platforms", json=platform_body(name="TGV玻璃通孔中试平台")).json()
    by_tag = client.post("/v1/platforms", json=platform_body(tags=["玻璃通孔"])).json()
    client.post("/v1/platforms", json=platform_body(name="无关平台", tags=["注塑"]))
    found = _ids(client.get("/v1/platforms", params={"q": "玻璃通孔"}).json())
    assert found == [by_name["id"], by_tag["id"]]
    assert _ids(client.get("/v1/platforms", params={"q": "tgv"}).json()) == [by_name["id"]]


def test_text_search_treats_like_wildcards_literally(client: TestClient) -> None:
    client.post("/v1/platforms", json=platform_body(name="平台A"))
    assert client.get("/v1/platforms", params={"q": "%"}).json()["items"] == []
    assert client.get("/v1/platforms", params={"q": "_"}).json()["items"] == []


def test_updated_since_filter(client: TestClient) -> None:
    old = client.post("/v1/demands", json=demand_body()).json()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert client.get("/v1/demands", params={"updated_since": future}).json()["items"] == []
    assert _ids(client.get("/v1/demands", params={"updated_since": past}).json()) == [old["id"]]


def test_demand_filters(client: TestClient) -> None:
    wanted = client.post(
        "/v1/demands", json=demand_body(needs_voucher=True, stage="小试", district="松山湖")
    ).json()
    client.post("/v1/demands", json=demand_body(needs_voucher=False, stage="中试", district=None))
    for params in (
        {"needs_voucher": "true"},
        {"stage": "小试"},
        {"district": "松山湖"},
        {"chain": "New Energy", "needs_voucher": "true"},
    ):
        assert _ids(client.get("/v1/demands", params=params).json()) == [wanted["id"]], params


def test_equipment_filtered_by_supplier(client: TestClient) -> None:
    a = client.post("/v1/platforms", json=platform_body()).json()
    b = client.post("/v1/platforms", json=platform_body()).json()
    mine = client.post("/v1/equipment", json={"supplier_id": a["id"], "name": "贴片机"}).json()
    client.post("/v1/equipment", json={"supplier_id": b["id"], "name": "回流焊"})
    assert _ids(client.get("/v1/equipment", params={"supplier_id": a["id"]}).json()) == [mine["id"]]
    assert _ids(client.get("/v1/equipment", params={"q": "贴片"}).json()) == [mine["id"]]
