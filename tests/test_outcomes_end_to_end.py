"""Outcomes change later rankings, through the gateway, by the documented factor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.matching.ranking import RankingWeights
from tests.catalog.conftest import demand_body, platform_body
from tests.stack import in_process_stack

# Two suppliers for both chains, 新能源 (kind X) and 新材料 (kind Y), about equally relevant
# to a 新能源 demand.
DECLINER = platform_body(
    name="固态电池与电池材料中试平台",
    description="固态电解质材料合成与固态电池电芯中试。",
    industry_chains=["新能源", "新材料"],
    tags=["固态电池", "电解质材料"],
    accepts_vouchers=True,
)
FINISHER = platform_body(
    name="电池电芯中试基地",
    description="固态电池电芯试制与正极材料烧结中试。",
    industry_chains=["新能源", "新材料"],
    tags=["固态电池", "正极材料"],
    accepts_vouchers=True,
)
KIND_X = demand_body(title="固态电池电芯中试", industry_chains=["新能源"], district=None)
KIND_Y = demand_body(title="固态电解质材料中试", industry_chains=["新材料"], district=None)


@pytest.fixture
def api(database_url: str) -> Iterator[TestClient]:
    with in_process_stack(database_url) as client:
        yield client


def _scores(api: TestClient, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Create a demand like ``body`` and rank it, reading every earlier write."""
    demand = api.post("/v1/demands", json=body).json()
    response = api.get(
        f"/v1/demands/{demand['id']}/matches",
        params={"min_version": demand["version"], "limit": 100},
    )
    assert response.status_code == 200, response.text
    return {r["supplier_id"]: r for r in response.json()["results"]}


def _outcome_constraint(result: dict[str, Any]) -> dict[str, Any] | None:
    found = [c for c in result["explanation"]["constraints"] if c["name"] == "outcomes"]
    return found[0] if found else None


def _record(api: TestClient, supplier_id: str, outcome: str, count: int) -> None:
    for _ in range(count):
        demand = api.post("/v1/demands", json=KIND_X).json()
        body = {"supplier_id": supplier_id, "outcome": outcome}
        if outcome == "declined":
            body["reason"] = "产能已满"
        response = api.post(f"/v1/demands/{demand['id']}/outcomes", json=body)
        assert response.status_code == 201, response.text


def test_declines_sink_a_supplier_for_that_kind_of_demand_only(api: TestClient) -> None:
    decliner = api.post("/v1/platforms", json=DECLINER).json()["id"]
    finisher = api.post("/v1/platforms", json=FINISHER).json()["id"]
    before_x, before_y = _scores(api, KIND_X), _scores(api, KIND_Y)
    assert _outcome_constraint(before_x[decliner]) is None

    _record(api, decliner, "declined", 3)
    after_x, after_y = _scores(api, KIND_X), _scores(api, KIND_Y)

    # Three declines of 新能源 demands: the documented factor 0.80 on 新能源 demands ...
    assert after_x[decliner]["score"] == pytest.approx(before_x[decliner]["score"] * 0.8, abs=1e-5)
    constraint = _outcome_constraint(after_x[decliner])
    assert constraint is not None
    assert (constraint["kind"], constraint["declined"], constraint["positive"]) == ("新能源", 3, 0)
    assert constraint["factor"] == pytest.approx(0.8)
    # The two are about equally relevant: the penalty puts the decliner behind the other.
    assert (before_x[decliner]["rank"], before_x[finisher]["rank"]) == (1, 2)
    assert (after_x[finisher]["rank"], after_x[decliner]["rank"]) == (1, 2)
    assert after_x[finisher]["score"] == pytest.approx(before_x[finisher]["score"], abs=1e-6)
    # ... and nothing on 新材料 demands.
    assert after_y[decliner]["score"] == pytest.approx(before_y[decliner]["score"], abs=1e-6)
    assert _outcome_constraint(after_y[decliner]) is None

    # The outcomes are visible per supplier.
    listed = api.get(f"/v1/platforms/{decliner}/outcomes").json()["items"]
    assert [o["outcome"] for o in listed] == ["declined"] * 3


def test_completed_matches_give_at_most_the_documented_boost(api: TestClient) -> None:
    api.post("/v1/platforms", json=DECLINER)
    finisher = api.post("/v1/platforms", json=FINISHER).json()["id"]
    before = _scores(api, KIND_X)

    _record(api, finisher, "completed", 5)
    after = _scores(api, KIND_X)

    boost = RankingWeights().outcome_max_boost
    assert after[finisher]["score"] == pytest.approx(
        before[finisher]["score"] * (1 + boost), abs=1e-5
    )
    constraint = _outcome_constraint(after[finisher])
    assert constraint is not None and constraint["positive"] == 5
    explanation = after[finisher]["explanation"]
    assert after[finisher]["score"] == pytest.approx(
        explanation["base"] + sum(c["effect"] for c in explanation["constraints"]), abs=1e-5
    )
    # Completing closed those demands.
    closed = api.get("/v1/demands", params={"status": "closed", "limit": 100}).json()["items"]
    assert len(closed) == 5
