"""Brokers through the gateway: created in the catalog, suggested beside matches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body
from tests.catalog.test_brokers import broker_body
from tests.stack import in_process_stack


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    with in_process_stack(sqlite_url) as client:
        yield client


def test_matches_suggest_covering_brokers_with_the_assigned_one_first(api: TestClient) -> None:
    api.post("/v1/platforms", json=platform_body())
    senior = api.post("/v1/brokers", json=broker_body(name="高级", district="长安镇")).json()
    junior = api.post(
        "/v1/brokers",
        json=broker_body(name="初级", certification_level="初级", industry_chains=["新能源"]),
    ).json()
    food = api.post(
        "/v1/brokers", json=broker_body(name="食品", industry_chains=["食品饮料"])
    ).json()
    demand = api.post("/v1/demands", json=demand_body(broker_id=food["id"])).json()

    body = api.get(
        f"/v1/demands/{demand['id']}/matches", params={"min_version": demand["version"]}
    ).json()
    assert [b["broker_id"] for b in body["brokers"]] == [food["id"], senior["id"], junior["id"]]
    assert [b["assigned"] for b in body["brokers"]] == [True, False, False]
    assert body["brokers"][1]["matched_chains"] == ["新能源"]
    assert body["brokers"][2]["same_district"] is True  # the demand is in 松山湖

    # POST /v1/match infers the chain from the text when none is named.
    adhoc = api.post(
        "/v1/match",
        json={"title": "固态电池电芯中试放大", "description": "需要中试线"},
        params={"min_version": demand["version"]},
    )
    assert adhoc.status_code == 200, adhoc.text
    assert [b["broker_id"] for b in adhoc.json()["brokers"]] == [senior["id"], junior["id"]]
    chosen = api.post(
        "/v1/match",
        json={"title": "固态电池电芯中试放大", "broker_id": junior["id"]},
    ).json()
    assert [(b["broker_id"], b["assigned"]) for b in chosen["brokers"]] == [
        (junior["id"], True),
        (senior["id"], False),
    ]


def test_deactivated_broker_is_no_longer_suggested(api: TestClient) -> None:
    broker = api.post("/v1/brokers", json=broker_body()).json()
    demand = api.post("/v1/demands", json=demand_body()).json()
    url = f"/v1/demands/{demand['id']}/matches"
    first = api.get(url, params={"min_version": demand["version"]}).json()
    assert [b["broker_id"] for b in first["brokers"]] == [broker["id"]]
    changed = api.patch(f"/v1/brokers/{broker['id']}", json={"active": False}).json()
    assert api.get(url, params={"min_version": changed["version"]}).json()["brokers"] == []
