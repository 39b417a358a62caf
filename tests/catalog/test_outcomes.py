"""Match outcomes: recorded per demand and supplier, listed both ways, logged for matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body


@pytest.fixture
def pair(client: TestClient) -> tuple[str, str]:
    """(demand id, platform id)."""
    platform = client.post("/v1/platforms", json=platform_body()).json()
    demand = client.post("/v1/demands", json=demand_body()).json()
    return demand["id"], platform["id"]


def _record(client: TestClient, demand_id: str, supplier_id: str, outcome: str, **extra: Any):
    return client.post(
        f"/v1/demands/{demand_id}/outcomes",
        json={"supplier_id": supplier_id, "outcome": outcome, **extra},
    )


def test_recording_an_outcome_answers_201_with_the_demand_status(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    response = _record(client, demand_id, platform_id, "contacted")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("out_")
    assert (body["demand_id"], body["supplier_id"], body["supplier_kind"]) == (
        demand_id,
        platform_id,
        "platform",
    )
    assert (body["outcome"], body["reason"], body["demand_status"]) == (
        "contacted",
        None,
        "matched",
    )
    # The outcome and the demand's new status: two changes, the version after both.
    assert body["version"] == 4
    assert body["recorded_at"] == body["created_at"]
    assert client.get(f"/v1/demands/{demand_id}").json()["status"] == "matched"


def test_each_outcome_is_in_the_change_log_as_match_outcome(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    recorded = _record(client, demand_id, platform_id, "declined", reason="产能已满").json()
    changes = client.get("/v1/changes").json()["items"]
    (change,) = [c for c in changes if c["resource"] == "match_outcome"]
    assert change["id"] == recorded["id"] and change["op"] == "upsert"
    data = change["data"]
    for name in ("id", "demand_id", "supplier_id", "outcome", "reason", "recorded_at"):
        assert data[name] == recorded[name]
    assert data["created_at"] == recorded["created_at"]
    # A decline moves no status: no demand change follows.
    assert changes[-1]["resource"] == "match_outcome"


def test_outcomes_drive_the_demand_through_its_lifecycle(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    seen = [
        _record(client, demand_id, platform_id, outcome).json()["demand_status"]
        for outcome in ("viewed", "visited", "contracted", "contacted", "completed")
    ]
    assert seen == ["open", "matched", "in_progress", "in_progress", "closed"]


def test_a_decline_needs_a_reason(client: TestClient, pair: tuple[str, str]) -> None:
    demand_id, platform_id = pair
    response = _record(client, demand_id, platform_id, "declined")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "reason" in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "hired"}, "outcome"),
        ({"supplier_id": "plt_nobody"}, "supplier_id"),
        ({"recorded_at": "2999-01-01T00:00:00Z"}, "recorded_at"),
        ({"recorded_at": "yesterday"}, "recorded_at"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_outcomes_are_422_naming_the_field(
    client: TestClient, pair: tuple[str, str], body: dict[str, Any], field: str
) -> None:
    demand_id, platform_id = pair
    full = {"supplier_id": platform_id, "outcome": "contacted", **body}
    response = client.post(f"/v1/demands/{demand_id}/outcomes", json=full)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert client.get(f"/v1/demands/{demand_id}/outcomes").json()["items"] == []


def test_an_outcome_of_an_unknown_demand_is_404(client: TestClient, pair: tuple[str, str]) -> None:
    _, platform_id = pair
    response = _record(client, "dmd_nope", platform_id, "viewed")
    assert response.status_code == 404
    assert client.get("/v1/demands/dmd_nope/outcomes").status_code == 404


def test_a_backdated_outcome_keeps_its_time(client: TestClient, pair: tuple[str, str]) -> None:
    demand_id, platform_id = pair
    when = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    body = _record(
        client, demand_id, platform_id, "visited", recorded_at="2026-11-02T17:30:00+08:00"
    ).json()
    assert datetime.fromisoformat(body["recorded_at"]) == when
    assert datetime.fromisoformat(body["created_at"]) > when + timedelta(days=1)


def test_outcomes_are_listed_per_demand_and_per_supplier_newest_first(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    maker = client.post("/v1/manufacturers", json=platform_body(name="代工厂", level=None)).json()
    other = client.post("/v1/demands", json=demand_body(title="另一个需求")).json()
    first = _record(client, demand_id, platform_id, "viewed").json()
    second = _record(client, demand_id, maker["id"], "declined", reason="不做电池").json()
    third = _record(client, other["id"], platform_id, "contacted").json()

    of_demand = client.get(f"/v1/demands/{demand_id}/outcomes").json()
    assert [o["id"] for o in of_demand["items"]] == [second["id"], first["id"]]
    of_platform = client.get(f"/v1/platforms/{platform_id}/outcomes").json()
    assert [o["id"] for o in of_platform["items"]] == [third["id"], first["id"]]
    of_maker = client.get(f"/v1/manufacturers/{maker['id']}/outcomes").json()
    assert [o["id"] for o in of_maker["items"]] == [second["id"]]
    # A supplier is looked up under its own kind only.
    assert client.get(f"/v1/manufacturers/{platform_id}/outcomes").status_code == 404
    assert client.get("/v1/platforms/plt_nope/outcomes").status_code == 404


def test_outcome_lists_filter_by_outcome_and_page(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    ids = [_record(client, demand_id, platform_id, "viewed").json()["id"] for _ in range(5)]
    _record(client, demand_id, platform_id, "contacted")
    viewed = client.get(f"/v1/demands/{demand_id}/outcomes?outcome=viewed&limit=2").json()
    seen = [o["id"] for o in viewed["items"]]
    while viewed["next_cursor"]:
        viewed = client.get(
            f"/v1/demands/{demand_id}/outcomes",
            params={"outcome": "viewed", "limit": 2, "cursor": viewed["next_cursor"]},
        ).json()
        seen += [o["id"] for o in viewed["items"]]
    assert seen == list(reversed(ids))
    contacted = client.get(f"/v1/platforms/{platform_id}/outcomes?outcome=contacted").json()
    assert [o["outcome"] for o in contacted["items"]] == ["contacted"]
    assert client.get(f"/v1/demands/{demand_id}/outcomes?outcome=hired").status_code == 422
    assert client.get(f"/v1/demands/{demand_id}/outcomes?cursor=garbage").status_code == 422


def test_outcomes_stay_when_the_demand_is_deleted(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    recorded = _record(client, demand_id, platform_id, "completed").json()
    assert client.delete(f"/v1/demands/{demand_id}").status_code == 200
    items = client.get(f"/v1/platforms/{platform_id}/outcomes").json()["items"]
    assert [o["id"] for o in items] == [recorded["id"]]


def test_an_outcome_repeated_with_an_idempotency_key_is_recorded_once(
    client: TestClient, pair: tuple[str, str]
) -> None:
    demand_id, platform_id = pair
    headers = {"Idempotency-Key": "outcome-0001"}
    body = {"supplier_id": platform_id, "outcome": "contacted"}
    path = f"/v1/demands/{demand_id}/outcomes"
    first = client.post(path, json=body, headers=headers)
    second = client.post(path, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(client.get(path).json()["items"]) == 1
    reused = client.post(path, json={**body, "outcome": "visited"}, headers=headers)
    assert reused.status_code == 422
