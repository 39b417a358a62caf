"""API keys in the catalog: issued once, stored hashed, listed, revoked, verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text


def _create(client: TestClient, **overrides: object) -> dict:
    body = {"label": "municipal platform", "scopes": ["catalog:read", "match:read"], **overrides}
    response = client.post("/v1/admin/keys", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_created_key_is_shown_once_and_verifies(client: TestClient) -> None:
    created = _create(client)
    assert created["key"].startswith(f"pm_{created['id']}_")
    assert created["consumer"] == "municipal platform"
    verified = client.post("/internal/keys/verify", json={"key": created["key"]}).json()
    assert verified["valid"] is True
    assert verified["scopes"] == ["catalog:read", "match:read"]
    assert verified["consumer_id"] == created["consumer_id"]
    listed = client.get("/v1/admin/keys").json()["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]


def test_only_a_salted_hash_is_stored(client: TestClient, database_url: str) -> None:
    created = _create(client)
    secret = created["key"].rsplit("_", 1)[1]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT salt, secret_hash FROM api_keys")).one()
        dump = " ".join(str(v) for v in conn.execute(text("SELECT * FROM api_keys")).one())
    engine.dispose()
    assert secret not in dump
    assert len(row.salt) == 32 and len(row.secret_hash) == 64


def test_wrong_secret_unknown_id_and_garbage_do_not_verify(client: TestClient) -> None:
    created = _create(client)
    key_id = created["id"]
    for key, reason in (
        (f"pm_{key_id}_{'0' * 40}", "unknown"),
        (f"pm_{'a' * 12}_{'0' * 40}", "unknown"),
        ("not-a-key", "malformed"),
        (created["key"] + "0", "malformed"),
    ):
        verified = client.post("/internal/keys/verify", json={"key": key}).json()
        assert verified == {**verified, "valid": False, "reason": reason, "scopes": []}, key


def test_revoked_key_no_longer_verifies(client: TestClient) -> None:
    created = _create(client)
    revoked = client.delete(f"/v1/admin/keys/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    verified = client.post("/internal/keys/verify", json={"key": created["key"]}).json()
    assert (verified["valid"], verified["reason"]) == (False, "revoked")
    assert client.get("/v1/admin/keys").json()["items"] == []
    assert len(client.get("/v1/admin/keys?include_revoked=true").json()["items"]) == 1
    assert client.delete("/v1/admin/keys/nope").status_code == 404


def test_expired_key_no_longer_verifies(client: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    created = _create(client, expires_at=past)
    verified = client.post("/internal/keys/verify", json={"key": created["key"]}).json()
    assert (verified["valid"], verified["reason"]) == (False, "expired")


def test_keys_of_one_consumer_share_its_rate_limit(client: TestClient) -> None:
    first = _create(client, consumer="integrator", rate_limit_per_minute=120)
    second = _create(client, consumer="integrator", label="second key")
    assert first["consumer_id"] == second["consumer_id"]
    assert second["rate_limit_per_minute"] == 120


def test_unknown_scope_is_422(client: TestClient) -> None:
    response = client.post("/v1/admin/keys", json={"label": "x", "scopes": ["root"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scopes[0]"


def test_key_writes_do_not_touch_the_catalog_version(client: TestClient) -> None:
    _create(client)
    assert client.get("/v1/changes").json()["current_version"] == 0


def test_internal_routes_are_not_in_the_public_document(client: TestClient) -> None:
    assert not any(path.startswith("/internal") for path in client.app.openapi()["paths"])
