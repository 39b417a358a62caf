"""Idempotency-Key on catalog POSTs: repeats are answered from the stored answer, never redone."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.catalog.app import create_app
from services.catalog.db import Database
from services.catalog.idempotency import IdempotencyService, IdempotentRequest
from services.catalog.models import IdempotencyRecord
from services.catalog.repository import CatalogRepository
from services.catalog.service import utcnow
from tests.catalog.conftest import catalog_settings, demand_body, platform_body

KEY = {"Idempotency-Key": "order-7f3a-0001"}


def _stored_keys(client: TestClient) -> int:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    with db.session() as session:
        return int(session.execute(select(func.count()).select_from(IdempotencyRecord)).scalar())


def _count(client: TestClient, path: str) -> int:
    return len(client.get(path, params={"limit": 100}).json()["items"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/platforms", platform_body()),
        ("/v1/manufacturers", platform_body(level=None)),
        ("/v1/demands", demand_body()),
    ],
)
def test_a_repeat_returns_the_first_answer_without_a_second_write(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    first = client.post(path, json=body, headers=KEY)
    second = client.post(path, json=body, headers=KEY)
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _count(client, path) == 1
    assert client.get("/v1/changes").json()["current_version"] == 1
    assert _stored_keys(client) == 1


def test_equipment_and_solutions_take_keys_too(client: TestClient) -> None:
    platform = client.post("/v1/platforms", json=platform_body()).json()
    for path, body in (
        ("/v1/equipment", {"supplier_id": platform["id"], "name": "干法电极辊压机"}),
        ("/v1/solutions", {"platform_id": platform["id"], "title": "电芯试制方案"}),
    ):
        headers = {"Idempotency-Key": f"key-for-{path}"}
        first = client.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.text
        second = client.post(path, json=body, headers=headers)
        assert second.content == first.content
        assert second.headers["Idempotent-Replayed"] == "true"
        assert _count(client, path) == 1


def test_the_same_key_with_another_body_is_a_422(client: TestClient) -> None:
    assert client.post("/v1/platforms", json=platform_body(), headers=KEY).status_code == 201
    response = client.post("/v1/platforms", json=platform_body(name="另一个平台"), headers=KEY)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "different request" in response.json()["detail"]
    assert _count(client, "/v1/platforms") == 1


def test_the_same_key_on_another_path_is_a_422(client: TestClient) -> None:
    assert client.post("/v1/demands", json=demand_body(), headers=KEY).status_code == 201
    assert client.post("/v1/platforms", json=demand_body(), headers=KEY).status_code == 422


def test_keys_of_different_consumers_are_independent(client: TestClient) -> None:
    a = client.post(
        "/v1/platforms", json=platform_body(), headers={**KEY, "X-Pilotmatch-Consumer": "c_a"}
    )
    b = client.post(
        "/v1/platforms", json=platform_body(), headers={**KEY, "X-Pilotmatch-Consumer": "c_b"}
    )
    anonymous = client.post("/v1/platforms", json=platform_body(), headers=KEY)
    assert {a.status_code, b.status_code, anonymous.status_code} == {201}
    assert len({a.json()["id"], b.json()["id"], anonymous.json()["id"]}) == 3
    assert "Idempotent-Replayed" not in b.headers
    assert _count(client, "/v1/platforms") == 3


def test_expired_keys_are_ignored_and_swept(database_url: str) -> None:
    settings = catalog_settings(database_url, idempotency_ttl_seconds=0.3)
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/platforms", json=platform_body(), headers=KEY)
        other = {"Idempotency-Key": "other"}
        assert client.post("/v1/demands", json=demand_body(), headers=other).status_code == 201
        time.sleep(0.4)
        # Expired: the key is free again, even for another body, and the request is carried out.
        second = client.post("/v1/platforms", json=platform_body(name="新平台"), headers=KEY)
        assert second.status_code == 201
        assert "Idempotent-Replayed" not in second.headers
        assert second.json()["id"] != first.json()["id"]
        assert _count(client, "/v1/platforms") == 2
        # The other expired answer was swept while the new one was stored.
        assert _stored_keys(client) == 1


def test_an_import_repeated_with_its_key_returns_the_same_report(client: TestClient) -> None:
    body = {
        "platforms": [platform_body(external_ref="P1")],
        "demands": [demand_body(external_ref="D1")],
    }
    first = client.post("/v1/import", json=body, headers=KEY)
    second = client.post("/v1/import", json=body, headers=KEY)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.json()["created"]["platforms"] == 1
    assert second.json()["version"] == first.json()["version"] == 2
    assert second.headers["Idempotent-Replayed"] == "true"
    assert client.get("/v1/changes").json()["current_version"] == 2


def test_without_the_header_nothing_changes(client: TestClient) -> None:
    first = client.post("/v1/platforms", json=platform_body())
    second = client.post("/v1/platforms", json=platform_body())
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second.headers
    assert first.headers["Location"] == f"/v1/platforms/{first.json()['id']}"
    assert _stored_keys(client) == 0


@pytest.mark.parametrize("key", [b"", b"x" * 201, "clé".encode(), b"tab\there", b"nul\x7f"])
def test_a_malformed_key_is_a_422_naming_the_header(client: TestClient, key: bytes) -> None:
    response = client.post("/v1/platforms", json=platform_body(), headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert _count(client, "/v1/platforms") == 0


def test_key_creation_refuses_the_header(client: TestClient) -> None:
    response = client.post(
        "/v1/admin/keys", json={"consumer": "municipal", "scopes": ["admin"]}, headers=KEY
    )
    assert response.status_code == 400
    assert "secret" in response.json()["detail"]
    assert _stored_keys(client) == 0


def test_a_concurrent_duplicate_is_answered_from_the_winner(database_url: str) -> None:
    """Both transactions looked the key up before either stored it: the loser's write is
    rolled back by the unique constraint and it answers with the winner's stored answer."""
    db = Database(database_url)
    request = IdempotentRequest("c_1", "k", "f" * 64)
    try:
        with db.session(write=True) as winner:
            service = IdempotencyService(CatalogRepository(winner), 60, utcnow)
            assert service.lookup(request) is None
            assert service.store(request, 201, '{"id":"a"}', "/v1/platforms/a") is None
            winner.commit()
        with db.session(write=True) as loser:
            service = IdempotencyService(CatalogRepository(loser), 60, utcnow)
            answer = service.store(request, 201, '{"id":"b"}', "/v1/platforms/b")
            assert answer is not None
            assert (answer.status_code, answer.body) == (201, '{"id":"a"}')
        with db.session() as session:
            rows = session.execute(select(IdempotencyRecord)).scalars().all()
            assert [row.response_body for row in rows] == ['{"id":"a"}']
    finally:
        db.dispose()
