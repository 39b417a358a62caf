"""Matching through the gateway, reading its own writes with min_version."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body
from tests.stack import in_process_stack

BATTERY = platform_body(
    name="固态电池中试平台",
    description="硫化物固态电解质、干法电极与软包电芯中试，化成分容与安全测试。",
    industry_chains=["新能源"],
    tags=["固态电池", "电芯"],
    certifications=["CNAS"],
    stages=["小试", "中试"],
    accepts_vouchers=True,
)
GARMENTS = platform_body(
    name="服装打样代工厂",
    description="针织与梭织服装打样、小批量生产，面料检测。",
    industry_chains=["纺织服装鞋帽"],
    tags=["服装", "打样"],
    capabilities=["服装打样"],
    equipment=[],
    certifications=["ISO 9001"],
    stages=["小批量试产"],
    accepts_vouchers=False,
    level=None,
)


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    with in_process_stack(sqlite_url) as client:
        yield client


def seed(api: TestClient) -> tuple[dict, dict, int]:
    battery = api.post("/v1/platforms", json=BATTERY).json()
    garments = api.post("/v1/manufacturers", json=GARMENTS).json()
    return battery, garments, garments["version"]


def test_matches_for_a_stored_demand_rank_the_fitting_supplier_first(api: TestClient) -> None:
    battery, _garments, _ = seed(api)
    demand = api.post("/v1/demands", json=demand_body()).json()
    response = api.get(
        f"/v1/demands/{demand['id']}/matches", params={"min_version": demand["version"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["demand_id"] == demand["id"]
    assert body["index_version"] >= demand["version"]
    assert body["index_stale"] is False
    results = body["results"]
    assert results[0]["supplier_id"] == battery["id"]
    assert results[0]["rank"] == 1
    assert results[0]["kind"] == "platform"
    assert set(results[0]["explanation"]) >= {"text", "chain", "tags", "constraints"}
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_kind_filter_and_limit(api: TestClient) -> None:
    _battery, _garments, _version = seed(api)
    demand = api.post("/v1/demands", json=demand_body()).json()
    url = f"/v1/demands/{demand['id']}/matches"
    only = api.get(url, params={"kind": "manufacturer", "min_version": demand["version"]}).json()
    assert {r["kind"] for r in only["results"]} <= {"manufacturer"}
    one = api.get(url, params={"limit": 1}).json()
    assert len(one["results"]) <= 1
    assert api.get(url, params={"kind": "robots"}).status_code == 422
    assert api.get(url, params={"limit": 0}).status_code == 422


def test_required_certification_excludes_suppliers_lacking_it(api: TestClient) -> None:
    battery, _garments, version = seed(api)
    body = demand_body(required_certifications=["ISO 9001"])
    response = api.post("/v1/match", params={"min_version": version}, json=body)
    assert response.status_code == 200, response.text
    ids = [r["supplier_id"] for r in response.json()["results"]]
    assert battery["id"] not in ids
    assert response.json()["demand_id"] is None


def test_ad_hoc_match_resolves_chain_aliases(api: TestClient) -> None:
    battery, _, version = seed(api)
    body = {"title": "solid-state battery pilot line", "industry_chains": ["New Energy"]}
    results = api.post("/v1/match", params={"min_version": version}, json=body).json()["results"]
    assert results[0]["supplier_id"] == battery["id"]


def test_a_supplier_ruling_out_what_the_demand_asks_says_so_in_its_explanation(
    api: TestClient,
) -> None:
    battery, _, _ = seed(api)
    lab = api.post(
        "/v1/platforms",
        json={
            **BATTERY,
            "name": "固态电池材料实验室",
            "description": "硫化物固态电解质材料小试。没有干法电极设备，不能做软包电芯中试。",
        },
    ).json()
    body = {"title": "固态电池干法电极软包电芯中试", "industry_chains": ["新能源"]}
    response = api.post("/v1/match", params={"min_version": lab["version"]}, json=body)
    assert response.status_code == 200, response.text
    results = {r["supplier_id"]: r for r in response.json()["results"]}
    assert next(iter(results)) == battery["id"]  # best first
    limits = [
        c for c in results[lab["id"]]["explanation"]["constraints"] if c["name"] == "disclaimer"
    ]
    assert len(limits) == 1 and limits[0]["factor"] < 1 and limits[0]["effect"] < 0
    assert {"干法", "电极"} <= set(limits[0]["terms"])
    assert limits[0]["statements"] == ["没有干法电极设备", "不能做软包电芯中试"]
    assert not any(
        c["name"] == "disclaimer" for c in results[battery["id"]]["explanation"]["constraints"]
    )


def test_a_supplier_whose_batches_miss_the_demands_quantity_says_so(api: TestClient) -> None:
    seed(api)
    volume = api.post(
        "/v1/manufacturers",
        json={
            **GARMENTS,
            "name": "针织服装代工厂",
            "description": "针织服装打样与批量生产，单款起订量3000件。",
        },
    ).json()
    body = {"title": "针织开衫打样", "description": "新款针织开衫打样，首单200件。"}
    response = api.post("/v1/match", params={"min_version": volume["version"]}, json=body)
    assert response.status_code == 200, response.text
    results = {r["supplier_id"]: r for r in response.json()["results"]}
    batch = next(
        c for c in results[volume["id"]]["explanation"]["constraints"] if c["name"] == "batch"
    )
    assert batch["factor"] < 1 and batch["effect"] < 0
    assert "单款起订量3000件" in batch["reason"] and "200件" in batch["reason"]


def test_reasons_come_in_the_language_the_caller_accepts(api: TestClient) -> None:
    """Through the gateway: Accept-Language picks the reasons' language, Content-Language
    says which, Vary tells caches; the rest of the answer is the same."""
    battery, _garments, version = seed(api)
    body = {"title": "针织开衫打样", "description": "新款针织开衫打样，首单200件。"}
    answers = {}
    for header in (None, "zh-CN,zh;q=0.9,en;q=0.8", "fr"):
        headers = {"Accept-Language": header} if header else {}
        response = api.post(
            "/v1/match", params={"min_version": version}, json=body, headers=headers
        )
        assert response.status_code == 200, response.text
        assert "Accept-Language" in response.headers["Vary"]
        answers[header] = (response.headers["Content-Language"], response.json())
    assert [language for language, _ in answers.values()] == ["en", "zh", "en"]
    english, chinese = answers[None][1], answers["zh-CN,zh;q=0.9,en;q=0.8"][1]
    assert english == answers["fr"][1]

    def reasons(answer: dict) -> list[str]:
        return [c["reason"] for r in answer["results"] for c in r["explanation"]["constraints"]]

    assert reasons(english) and all(re.search(r"[a-z]{3}", r) for r in reasons(english))
    assert all(re.search(r"[\u4e00-\u9fff]", r) for r in reasons(chinese))
    assert reasons(english) != reasons(chinese)

    def without_reasons(answer: dict) -> dict:
        for r in answer["results"]:
            for c in r["explanation"]["constraints"]:
                c.pop("reason")
        return answer

    assert without_reasons(english) == without_reasons(chinese)
    similar = api.get(f"/v1/platforms/{battery['id']}/similar", headers={"Accept-Language": "zh"})
    assert similar.status_code == 200 and similar.headers["Content-Language"] == "zh"


def test_ad_hoc_match_validates_its_body(api: TestClient) -> None:
    response = api.post("/v1/match", json={"title": "", "stage": "量产", "colour": 1})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"title", "stage", "colour"}


def test_unknown_demand_is_404(api: TestClient) -> None:
    _, _, version = seed(api)
    response = api.get("/v1/demands/dmd_nope/matches", params={"min_version": version})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_similar_suppliers_exclude_the_supplier_itself(api: TestClient) -> None:
    battery, _, _ = seed(api)
    other = api.post("/v1/platforms", json={**BATTERY, "name": "固态电池电芯试制线"}).json()
    response = api.get(
        f"/v1/platforms/{battery['id']}/similar", params={"min_version": other["version"]}
    )
    assert response.status_code == 200, response.text
    ids = [r["supplier_id"] for r in response.json()["results"]]
    assert battery["id"] not in ids
    assert ids[0] == other["id"]
    assert api.get(f"/v1/manufacturers/{battery['id']}/similar").status_code == 404


def test_deleted_supplier_leaves_the_results(api: TestClient) -> None:
    battery, _, _ = seed(api)
    deleted = api.delete(f"/v1/platforms/{battery['id']}").json()
    results = api.post(
        "/v1/match", params={"min_version": deleted["version"]}, json=demand_body()
    ).json()["results"]
    assert battery["id"] not in [r["supplier_id"] for r in results]


def test_index_status_reports_counts_and_lag(api: TestClient) -> None:
    _, _, version = seed(api)
    api.get("/v1/demands/x/matches", params={"min_version": version})
    status = api.get("/v1/index").json()
    assert status["ready"] is True
    assert status["version"] >= version
    assert status["suppliers"] == {"platform": 1, "manufacturer": 1}
    assert status["catalog_reachable"] is True
    assert status["full_builds"] >= 1


def test_min_version_beyond_the_catalog_is_422_at_once(sqlite_url: str) -> None:
    # A version no write has produced cannot be waited for: the caller hears so without a wait.
    # The wait allowed is long, so "at once" is told apart from "after the wait" even when a
    # busy machine slows the first request down (the first index sync runs then too).
    with in_process_stack(sqlite_url, min_version_timeout=30.0) as api:
        started = time.monotonic()
        response = api.get("/v1/demands/x/matches", params={"min_version": 10_000})
        elapsed = time.monotonic() - started
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["query.min_version"]
    assert elapsed < 10
