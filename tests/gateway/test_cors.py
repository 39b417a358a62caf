"""CORS for the municipal platform's web origins: off by default, preflights need no key."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from services.gateway.settings import GatewaySettings
from services.shared.settings import SettingsError, load_settings
from tests.gateway.test_gateway import ADMIN_KEY, gateway, streamed

PLATFORM = "https://qiye.dongguan.example"
OTHER = "https://evil.example"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type, idempotency-key, x-request-id",
    }


@pytest.fixture
def calls() -> list[httpx.Request]:
    return []


def cors_gateway(
    calls: list[httpx.Request], origins: str = f"{PLATFORM}, https://b.example"
) -> TestClient:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return streamed(200, {"items": []})

    return gateway(handler, cors_allow_origins=origins)


def test_preflight_from_an_allowed_origin_needs_no_key(calls: list[httpx.Request]) -> None:
    with cors_gateway(calls) as client:
        response = client.options("/v1/platforms", headers=preflight(PLATFORM))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PLATFORM
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("x-api-key", "content-type", "idempotency-key", "x-request-id"):
        assert header in allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["x-request-id"]
    assert calls == [], "a preflight is answered by the gateway"


def test_preflight_from_another_origin_is_refused(calls: list[httpx.Request]) -> None:
    with cors_gateway(calls) as client:
        response = client.options("/v1/platforms", headers=preflight(OTHER))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    assert calls == []


def test_actual_request_from_an_allowed_origin_can_read_the_request_id(
    calls: list[httpx.Request],
) -> None:
    with cors_gateway(calls) as client:
        response = client.get("/v1/platforms", headers={"Origin": PLATFORM, "X-API-Key": ADMIN_KEY})
        refused = client.get("/v1/platforms", headers={"Origin": PLATFORM})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PLATFORM
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == PLATFORM, "errors are readable too"


def test_other_origins_get_no_cors_headers(calls: list[httpx.Request]) -> None:
    with cors_gateway(calls) as client:
        response = client.get("/v1/platforms", headers={"Origin": OTHER, "X-API-Key": ADMIN_KEY})
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(calls: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return streamed(200, {})

    with gateway(handler) as client:
        response = client.options("/v1/platforms", headers=preflight(PLATFORM))
        actual = client.get("/v1/platforms", headers={"Origin": PLATFORM, "X-API-Key": ADMIN_KEY})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in actual.headers


def test_allowed_origins_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", " https://a.example , https://b.example/ ")
    settings = load_settings(GatewaySettings)
    assert settings.cors_allow_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "")
    assert load_settings(GatewaySettings).cors_allow_origins == []


def test_a_malformed_origin_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "qiye.example")
    with pytest.raises(SettingsError) as error:
        load_settings(GatewaySettings)
    assert "CORS_ALLOW_ORIGINS" in str(error.value)
