"""The gateway against fake upstreams (httpx.MockTransport): auth, forwarding, failures."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import upstream_for

ADMIN_KEY = "test-admin-key-0123456789abcdef"
UNKNOWN_KEY = {"valid": False, "reason": "unknown", "scopes": []}
Handler = Callable[[httpx.Request], httpx.Response]


def streamed(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A response whose body arrives as a stream, as it does from a real upstream."""
    content = json.dumps(body).encode() if body is not None else b""
    all_headers = {"content-type": "application/json", **(headers or {})}
    return httpx.Response(status, stream=httpx.ByteStream(content), headers=all_headers)


def gateway(handler: Handler, **overrides: object) -> TestClient:
    settings = GatewaySettings(
        environment="test",
        admin_key=ADMIN_KEY,
        catalog_url="http://catalog.test",
        matching_url="http://matching.test",
        **overrides,  # type: ignore[arg-type]
    )
    return TestClient(create_app(settings, transport=httpx.MockTransport(handler)))


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


@pytest.fixture
def echo(seen: list[httpx.Request]) -> Iterator[TestClient]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/internal/keys/verify":
            return streamed(200, UNKNOWN_KEY)
        seen.append(request)
        request.read()
        return streamed(
            201,
            {
                "host": request.url.host,
                "path": request.url.path,
                "query": request.url.query.decode(),
                "body": request.content.decode(),
            },
            headers={"X-Upstream": "yes", "Connection": "close"},
        )

    with gateway(handler) as client:
        yield client


def test_missing_key_is_401_problem(echo: TestClient, seen: list[httpx.Request]) -> None:
    response = echo.get("/v1/platforms")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "ApiKey"
    assert seen == [], "an unauthenticated request never reaches an upstream"


def test_unknown_key_is_401(echo: TestClient, seen: list[httpx.Request]) -> None:
    response = echo.get("/v1/platforms", headers={"X-API-Key": ADMIN_KEY + "x"})
    assert response.status_code == 401
    assert seen == []


def test_no_key_configured_lets_nobody_in(seen: list[httpx.Request]) -> None:
    settings = GatewaySettings(environment="development", admin_key=None)
    with TestClient(
        create_app(settings, transport=httpx.MockTransport(lambda r: streamed(200, UNKNOWN_KEY)))
    ) as client:
        assert client.get("/v1/platforms", headers={"X-API-Key": "anything"}).status_code == 401


def test_forwards_method_path_query_and_body(echo: TestClient, seen: list[httpx.Request]) -> None:
    response = echo.post(
        "/v1/platforms?limit=5&q=%E5%B9%B3%E5%8F%B0",
        json={"name": "平台"},
        headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": "req-7"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["host"] == "catalog.test"
    assert body["path"] == "/v1/platforms"
    assert body["query"] == "limit=5&q=%E5%B9%B3%E5%8F%B0"
    assert json.loads(body["body"]) == {"name": "平台"}
    assert response.headers["x-upstream"] == "yes"
    assert response.headers["x-request-id"] == "req-7"
    (request,) = seen
    assert request.headers["x-request-id"] == "req-7", "the request ID travels upstream"
    assert "x-api-key" not in request.headers, "the caller's key stays at the gateway"


def test_hop_by_hop_headers_are_not_passed_back(echo: TestClient) -> None:
    response = echo.get("/v1/platforms", headers={"X-API-Key": ADMIN_KEY})
    assert response.headers.get("connection") != "close"


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/v1/platforms", "catalog"),
        ("/v1/demands/dmd_1", "catalog"),
        ("/v1/demands/dmd_1/matches", "matching"),
        ("/v1/match", "matching"),
        ("/v1/index", "matching"),
        ("/v1/platforms/plt_1/similar", "matching"),
        ("/v1/manufacturers/mfr_1/similar", "matching"),
        ("/v1/import", "catalog"),
        ("/v1/changes", "catalog"),
        ("/v1/reports/coverage", "matching"),
        ("/v1/brokers/brk_1", "catalog"),
        ("/v1/reports/other", "catalog"),
        ("/v1/demands/dmd_1/outcomes", "catalog"),
        ("/v1/platforms/plt_1/outcomes", "catalog"),
        ("/v1/manufacturers/mfr_1/outcomes", "catalog"),
        ("/v1/demands/dmd_1/close", "catalog"),
        ("/v1/demands/dmd_1/renew", "catalog"),
    ],
)
def test_routes_each_path_to_its_service(path: str, service: str) -> None:
    assert upstream_for(path) == service


def test_matching_paths_reach_the_matching_host(echo: TestClient) -> None:
    response = echo.get("/v1/demands/dmd_1/matches", headers={"X-API-Key": ADMIN_KEY})
    assert response.json()["host"] == "matching.test"


def test_unreachable_upstream_is_503_problem() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with gateway(refuse) as client:
        response = client.get("/v1/platforms", headers={"X-API-Key": ADMIN_KEY})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "catalog" in response.json()["detail"]


def test_upstream_timeout_is_504_problem() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    with gateway(slow) as client:
        response = client.get("/v1/platforms", headers={"X-API-Key": ADMIN_KEY})
        assert response.status_code == 504
        assert response.json()["status"] == 504


def test_upstream_problem_passes_through_unchanged() -> None:
    problem = {"type": "https://x/not-found", "title": "Not found", "status": 404, "detail": "d"}

    def not_found(request: httpx.Request) -> httpx.Response:
        return streamed(404, problem, headers={"content-type": "application/problem+json"})

    with gateway(not_found) as client:
        response = client.get("/v1/platforms/x", headers={"X-API-Key": ADMIN_KEY})
        assert response.status_code == 404
        assert response.json() == problem
        assert response.headers["content-type"] == "application/problem+json"


def test_health_needs_no_key_and_readiness_follows_upstreams() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ready = request.url.host == "catalog.test"
        return streamed(200 if ready else 503, {})

    with gateway(handler) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        # Still ready: the catalog's routes can be served; the body names what is missing.
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["reason"] == "matching not ready"


def test_readiness_fails_when_no_upstream_answers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with gateway(handler) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reason"] == "catalog unreachable; matching unreachable"


def test_body_over_gateway_limit_is_413(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streamed(200)

    with gateway(handler, max_body_bytes=1024) as client:
        response = client.post("/v1/import", content=b"x" * 5000, headers={"X-API-Key": ADMIN_KEY})
        assert response.status_code == 413
        assert seen == []


def test_weak_admin_key_is_refused_outside_development() -> None:
    from services.shared.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as error:
        load_settings(GatewaySettings, environment="production", admin_key="changeme")
    assert "PILOTMATCH_ADMIN_KEY" in str(error.value)
    assert "\n" not in str(error.value)


def test_the_caller_cannot_choose_its_consumer_or_scopes(seen: list[httpx.Request]) -> None:
    """Catalog and matching decide whose demands a request reaches by these two headers: only
    the gateway may set them, from the verified key."""
    consumer_key = "pm_0123456789ab_" + "f" * 40

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/internal/keys/verify":
            return streamed(
                200,
                {
                    "valid": True,
                    "key_id": "0123456789ab",
                    "consumer_id": "csm_mine",
                    "scopes": ["catalog:read", "match:read"],
                },
            )
        seen.append(request)
        return streamed(200, {})

    spoofed = [
        ("X-API-Key", consumer_key),
        ("X-Pilotmatch-Consumer", "csm_someone_else"),
        ("x-pilotmatch-consumer", "csm_third"),
        ("X-Pilotmatch-Scopes", "admin"),
    ]
    # Naming them in Connection must not make the gateway drop its own values either.
    named = [*spoofed, ("Connection", "X-Pilotmatch-Consumer, X-Pilotmatch-Scopes")]
    with gateway(handler) as client:
        assert client.get("/v1/demands", headers=spoofed).status_code == 200
        assert client.get("/v1/demands/dmd_1/matches", headers=spoofed).status_code == 200
        assert client.get("/v1/demands", headers=named).status_code == 200
        assert client.get("/v1/demands", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    mine, matching, connection_named, admin = seen
    for request in (mine, matching, connection_named):
        assert request.headers.get_list("x-pilotmatch-consumer") == ["csm_mine"]
        assert request.headers.get_list("x-pilotmatch-scopes") == ["catalog:read match:read"]
    assert matching.url.host == "matching.test"
    assert admin.headers.get_list("x-pilotmatch-consumer") == ["admin"]
    assert "admin" in admin.headers["x-pilotmatch-scopes"].split()
