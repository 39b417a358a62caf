"""Demand lifecycle: server-managed status, explicit close and renew, expiry by a sweeper."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from services.catalog.app import create_app
from services.catalog.db import Database
from services.catalog.lifecycle import is_overdue, status_after_outcome, sweep_expired_demands
from services.catalog.models import Demand
from services.catalog.routes import background_units
from tests.catalog.conftest import catalog_settings, demand_body, platform_body


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _outcome(client: TestClient, demand_id: str, supplier_id: str, outcome: str, **extra: Any):
    return client.post(
        f"/v1/demands/{demand_id}/outcomes",
        json={"supplier_id": supplier_id, "outcome": outcome, **extra},
    )


def _changes_of(client: TestClient, resource: str) -> list[dict[str, Any]]:
    items = client.get("/v1/changes", params={"limit": 1000}).json()["items"]
    return [c for c in items if c["resource"] == resource]


# ---------------------------------------------------------------- pure rules


@pytest.mark.parametrize(
    ("current", "outcome", "after"),
    [
        ("open", "viewed", "open"),
        ("open", "contacted", "matched"),
        ("open", "visited", "matched"),
        ("open", "contracted", "in_progress"),
        ("open", "completed", "closed"),
        ("open", "declined", "open"),
        ("matched", "contacted", "matched"),
        ("in_progress", "visited", "in_progress"),  # never backwards
        ("in_progress", "completed", "closed"),
        ("expired", "contracted", "expired"),  # renew first
        ("closed", "contacted", "closed"),
    ],
)
def test_outcomes_move_active_demands_forward_only(current: str, outcome: str, after: str) -> None:
    assert status_after_outcome(current, outcome) == after


def test_only_open_and_matched_demands_past_their_expiry_are_overdue() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    past, future = now - timedelta(seconds=1), now + timedelta(seconds=1)
    assert is_overdue("open", past, now) and is_overdue("matched", now, now)
    assert not is_overdue("open", future, now)
    assert not is_overdue("in_progress", past, now)
    assert not is_overdue("closed", past, now)
    assert not is_overdue("open", None, now)


# ---------------------------------------------------------------- API


def test_a_new_demand_is_open_and_expires_after_the_configured_lifetime(database_url: str) -> None:
    settings = catalog_settings(database_url, demand_lifetime_days=30)
    with TestClient(create_app(settings)) as client:
        demand = client.post("/v1/demands", json=demand_body()).json()
    assert demand["status"] == "open"
    assert demand["status_reason"] is None
    created = _iso(demand["created_at"])
    assert _iso(demand["status_changed_at"]) == created
    assert _iso(demand["expires_at"]) == created + timedelta(days=30)


def test_status_cannot_be_set_by_patch_or_post(client: TestClient) -> None:
    demand = client.post("/v1/demands", json=demand_body()).json()
    patched = client.patch(f"/v1/demands/{demand['id']}", json={"status": "closed"})
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "status"
    assert client.post("/v1/demands", json=demand_body(status="closed")).status_code == 422
    assert client.get(f"/v1/demands/{demand['id']}").json()["status"] == "open"


def test_close_with_a_reason_then_closing_again_is_a_409_naming_the_status(
    client: TestClient,
) -> None:
    demand = client.post("/v1/demands", json=demand_body()).json()
    closed = client.post(f"/v1/demands/{demand['id']}/close", json={"reason": "已找到合作方"})
    assert closed.status_code == 200
    body = closed.json()
    assert body["status"] == "closed" and body["status_reason"] == "已找到合作方"
    assert body["version"] == 2
    assert client.get(f"/v1/demands/{demand['id']}").json()["status"] == "closed"
    again = client.post(f"/v1/demands/{demand['id']}/close")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "closed" in again.json()["detail"]
    # The close is in the change log as the demand's new state.
    assert _changes_of(client, "demand")[-1]["data"]["status"] == "closed"


def test_close_and_renew_of_an_unknown_demand_are_404(client: TestClient) -> None:
    for action in ("close", "renew"):
        response = client.post(f"/v1/demands/dmd_nope/{action}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


def test_renew_of_an_in_progress_or_closed_demand_is_a_409(client: TestClient) -> None:
    supplier = client.post("/v1/platforms", json=platform_body()).json()
    demand = client.post("/v1/demands", json=demand_body()).json()
    _outcome(client, demand["id"], supplier["id"], "contracted")
    in_progress = client.post(f"/v1/demands/{demand['id']}/renew")
    assert in_progress.status_code == 409 and "in_progress" in in_progress.json()["detail"]
    client.post(f"/v1/demands/{demand['id']}/close")
    closed = client.post(f"/v1/demands/{demand['id']}/renew")
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


def test_renewing_a_matched_demand_keeps_it_matched(client: TestClient) -> None:
    supplier = client.post("/v1/platforms", json=platform_body()).json()
    demand = client.post("/v1/demands", json=demand_body()).json()
    _outcome(client, demand["id"], supplier["id"], "visited")
    renewed = client.post(f"/v1/demands/{demand['id']}/renew").json()
    assert renewed["status"] == "matched"
    assert _iso(renewed["expires_at"]) > _iso(demand["expires_at"])


def test_renew_moves_the_expiry_to_the_given_time_which_must_be_in_the_future(
    client: TestClient,
) -> None:
    demand = client.post("/v1/demands", json=demand_body()).json()
    until = (datetime.now(UTC) + timedelta(days=200)).replace(microsecond=0)
    renewed = client.post(
        f"/v1/demands/{demand['id']}/renew", json={"expires_at": until.isoformat()}
    )
    assert renewed.status_code == 200
    assert _iso(renewed.json()["expires_at"]) == until
    past = client.post(
        f"/v1/demands/{demand['id']}/renew", json={"expires_at": "2020-01-01T00:00:00Z"}
    )
    assert past.status_code == 422
    assert past.json()["errors"][0]["field"] == "expires_at"


def test_lists_of_demands_filter_by_status(client: TestClient) -> None:
    kept = client.post("/v1/demands", json=demand_body(title="a")).json()
    gone = client.post("/v1/demands", json=demand_body(title="b")).json()
    client.post(f"/v1/demands/{gone['id']}/close")
    assert [d["id"] for d in client.get("/v1/demands?status=open").json()["items"]] == [kept["id"]]
    assert [d["id"] for d in client.get("/v1/demands?status=closed").json()["items"]] == [
        gone["id"]
    ]
    assert client.get("/v1/demands?status=finished").status_code == 422


def test_import_creates_open_demands_and_a_reimport_keeps_their_status(
    client: TestClient,
) -> None:
    body = {"demands": [demand_body(external_ref="ent-1")]}
    first = client.post("/v1/import", json=body).json()
    (demand,) = client.get("/v1/demands").json()["items"]
    assert demand["status"] == "open" and demand["expires_at"] is not None
    client.post(f"/v1/demands/{demand['id']}/close", json={"reason": "done"})
    again = client.post("/v1/import", json=body).json()
    assert again["unchanged"]["demands"] == 1 and again["version"] == first["version"] + 1
    changed = client.post(
        "/v1/import", json={"demands": [demand_body(external_ref="ent-1", title="新标题")]}
    ).json()
    assert changed["updated"]["demands"] == 1
    stored = client.get(f"/v1/demands/{demand['id']}").json()
    assert (stored["title"], stored["status"], stored["status_reason"]) == (
        "新标题",
        "closed",
        "done",
    )
    # The change log carries the kept status too.
    assert _changes_of(client, "demand")[-1]["data"]["status"] == "closed"


def test_close_and_renew_honour_idempotency_keys(client: TestClient) -> None:
    demand = client.post("/v1/demands", json=demand_body()).json()
    key = {"Idempotency-Key": "close-0001"}
    first = client.post(f"/v1/demands/{demand['id']}/close", json={"reason": "x"}, headers=key)
    second = client.post(f"/v1/demands/{demand['id']}/close", json={"reason": "x"}, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"


# ---------------------------------------------------------------- expiry


def _set_expiry(client: TestClient, demand_id: str, when: datetime) -> None:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    with db.transaction() as session:
        session.execute(update(Demand).where(Demand.id == demand_id).values(expires_at=when))


def test_the_sweeper_expires_overdue_open_and_matched_demands_only(client: TestClient) -> None:
    supplier = client.post("/v1/platforms", json=platform_body()).json()
    ids = {
        name: client.post("/v1/demands", json=demand_body(title=name)).json()["id"]
        for name in ("open", "matched", "in_progress", "closed", "fresh")
    }
    _outcome(client, ids["matched"], supplier["id"], "contacted")
    _outcome(client, ids["in_progress"], supplier["id"], "contracted")
    client.post(f"/v1/demands/{ids['closed']}/close")
    version_before = client.get("/v1/changes").json()["current_version"]
    # A clock 91 days on: every demand but the fresh one (expiring later) is past its expiry.
    fresh_expiry = datetime.now(UTC) + timedelta(days=200)
    _set_expiry(client, ids["fresh"], fresh_expiry)
    later = datetime.now(UTC) + timedelta(days=91)
    app = client.app
    units = background_units(app.state.db, app.state.settings, clock=lambda: later)  # type: ignore[attr-defined]

    assert sweep_expired_demands(units) == 2
    statuses = {name: client.get(f"/v1/demands/{i}").json()["status"] for name, i in ids.items()}
    assert statuses == {
        "open": "expired",
        "matched": "expired",
        "in_progress": "in_progress",
        "closed": "closed",
        "fresh": "open",
    }
    expired = client.get(f"/v1/demands/{ids['open']}").json()
    assert _iso(expired["status_changed_at"]) == later
    changes = client.get("/v1/changes", params={"after": version_before}).json()["items"]
    assert sorted((c["id"], c["data"]["status"]) for c in changes) == sorted(
        [(ids["open"], "expired"), (ids["matched"], "expired")]
    )
    # A second sweep finds nothing and writes nothing.
    assert sweep_expired_demands(units) == 0
    assert client.get("/v1/changes").json()["current_version"] == version_before + 2


def test_the_sweeper_works_in_batches(client: TestClient) -> None:
    ids = [
        client.post("/v1/demands", json=demand_body(title=f"d{i}")).json()["id"] for i in range(5)
    ]
    later = datetime.now(UTC) + timedelta(days=91)
    app = client.app
    units = background_units(app.state.db, app.state.settings, clock=lambda: later)  # type: ignore[attr-defined]
    assert sweep_expired_demands(units, batch=2) == 5
    assert {client.get(f"/v1/demands/{i}").json()["status"] for i in ids} == {"expired"}


def test_an_expired_demand_renews_to_open_with_a_new_expiry(client: TestClient) -> None:
    demand = client.post("/v1/demands", json=demand_body()).json()
    _set_expiry(client, demand["id"], datetime.now(UTC) - timedelta(minutes=1))
    app = client.app
    assert sweep_expired_demands(background_units(app.state.db, app.state.settings)) == 1  # type: ignore[attr-defined]
    assert client.get(f"/v1/demands/{demand['id']}").json()["status"] == "expired"
    renewed = client.post(f"/v1/demands/{demand['id']}/renew", json={"reason": "仍在寻找"}).json()
    assert (renewed["status"], renewed["status_reason"]) == ("open", "仍在寻找")
    lifetime = _iso(renewed["expires_at"]) - _iso(renewed["status_changed_at"])
    assert lifetime == timedelta(days=90)


def test_the_app_runs_the_sweeper_in_the_background(database_url: str) -> None:
    settings = catalog_settings(database_url, demand_expiry_sweep_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        demand = client.post("/v1/demands", json=demand_body()).json()
        _set_expiry(client, demand["id"], datetime.now(UTC) - timedelta(minutes=1))
        deadline = time.monotonic() + 10
        while client.get(f"/v1/demands/{demand['id']}").json()["status"] != "expired":
            assert time.monotonic() < deadline, "the sweeper did not expire the demand"
            time.sleep(0.02)
        task = client.app.state.expiry_sweeper_task  # type: ignore[attr-defined]
        assert not task.done()
    # Shutdown stopped the loop: the task ended on its own, neither cancelled nor failed.
    assert task.done() and not task.cancelled() and task.exception() is None
