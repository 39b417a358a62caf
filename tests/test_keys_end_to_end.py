"""Scoped API keys through the gateway: issued by an admin, checked on every call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import demand_body, platform_body
from tests.stack import ADMIN_KEY, in_process_stack


@pytest.fixture
def api(sqlite_url: str) -> Iterator[TestClient]:
    # No verification cache, so a revocation shows at once.
    with in_process_stack(sqlite_url, key_cache_seconds=0) as client:
        yield client


def issue(api: TestClient, *scopes: str, **extra: object) -> str:
    response = api.post("/v1/admin/keys", json={"label": "t", "scopes": list(scopes), **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def test_read_key_reads_but_cannot_write(api: TestClient) -> None:
    key = issue(api, "catalog:read")
    headers = {"X-API-Key": key}
    assert api.get("/v1/platforms", headers=headers).status_code == 200
    refused = api.post("/v1/platforms", json=platform_body(), headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["required_scope"] == "catalog:write"
    assert api.get("/v1/admin/keys", headers=headers).status_code == 403
    assert api.post("/v1/match", json=demand_body(), headers=headers).status_code == 403


def test_match_key_matches(api: TestClient) -> None:
    version = api.post("/v1/platforms", json=platform_body()).json()["version"]
    key = issue(api, "match:read")
    response = api.post(
        "/v1/match", params={"min_version": version}, json=demand_body(), headers={"X-API-Key": key}
    )
    assert response.status_code == 200, response.text


def test_revoked_and_expired_keys_get_401(api: TestClient) -> None:
    key = issue(api, "catalog:read")
    key_id = key.split("_")[1]
    assert api.delete(f"/v1/admin/keys/{key_id}").status_code == 200
    response = api.get("/v1/platforms", headers={"X-API-Key": key})
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    expired = issue(api, "catalog:read", expires_at="2000-01-01T00:00:00Z")
    response = api.get("/v1/platforms", headers={"X-API-Key": expired})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_unknown_and_malformed_keys_get_401(api: TestClient) -> None:
    for key in ("pm_0123456789ab_" + "0" * 40, "nonsense", "x" * 300):
        assert api.get("/v1/platforms", headers={"X-API-Key": key}).status_code == 401, key


def test_rate_limit_answers_429_with_headers(sqlite_url: str) -> None:
    with in_process_stack(sqlite_url, rate_limit_per_minute=60, rate_limit_burst_seconds=3) as api:
        key = issue(api, "catalog:read")
        statuses = []
        for _ in range(4):
            response = api.get("/v1/platforms", headers={"X-API-Key": key})
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429]
        assert response.headers["retry-after"] == "1"
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.headers["ratelimit-limit"] == "3"
        assert response.json()["status"] == 429
        first = api.get("/v1/industry-chains", headers={"X-API-Key": issue(api, "catalog:read")})
        assert first.headers["ratelimit-remaining"] == "2", "each key has its own bucket"


def test_consumer_limit_overrides_the_default(sqlite_url: str) -> None:
    with in_process_stack(
        sqlite_url, rate_limit_per_minute=6000, rate_limit_burst_seconds=1
    ) as api:
        key = issue(api, "catalog:read", consumer="slow partner", rate_limit_per_minute=60)
        first = api.get("/v1/platforms", headers={"X-API-Key": key})
        assert first.headers["ratelimit-limit"] == "1"
        assert api.get("/v1/platforms", headers={"X-API-Key": key}).status_code == 429


def test_the_bootstrap_admin_key_is_not_rate_limited(sqlite_url: str) -> None:
    with in_process_stack(sqlite_url, rate_limit_per_minute=60, rate_limit_burst_seconds=1) as api:
        for _ in range(5):
            assert api.get("/v1/platforms", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_import_and_matching_spend_more_of_the_rate_limit(sqlite_url: str) -> None:
    with in_process_stack(
        sqlite_url,
        # One token every 10 s, ten in the bucket: nothing comes back while the test runs.
        rate_limit_per_minute=6,
        rate_limit_burst_seconds=100,
        rate_limit_import_cost=6,
        rate_limit_match_cost=3,
    ) as api:
        key = issue(api, "catalog:read", "catalog:write", "match:read")
        headers = {"X-API-Key": key}
        imported = api.post("/v1/import", json={}, headers=headers)
        assert imported.status_code == 200, imported.text
        assert imported.headers["ratelimit-remaining"] == "4"
        # min_version: wait for the index's first sync instead of racing it (a 503 then).
        since = {"min_version": imported.json()["version"]}
        matched = api.post("/v1/match", json=demand_body(), headers=headers, params=since)
        assert matched.status_code == 200, matched.text
        assert matched.headers["ratelimit-remaining"] == "1"
        read = api.get("/v1/platforms", headers=headers)
        assert read.headers["ratelimit-remaining"] == "0"
        refused = api.post("/v1/match", json=demand_body(), headers=headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "30", "three tokens must come back"
        assert "counts as 3" in refused.json()["detail"]
        index = api.get("/v1/index", headers=headers)
        assert index.status_code == 429, "the bucket is empty even for a plain read"


def test_expensive_routes_cost_more_by_default() -> None:
    from services.gateway.settings import GatewaySettings

    settings = GatewaySettings(environment="test", admin_key=ADMIN_KEY)
    assert (settings.rate_limit_import_cost, settings.rate_limit_match_cost) == (20, 2)
