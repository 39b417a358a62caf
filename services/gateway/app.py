"""Gateway: the only public door. Checks the API key and forwards /v1/* to the right service."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.responses import Response

from services import __version__
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import Upstream, forward, upstream_for
from services.shared.health import health_router
from services.shared.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from services.shared.openapi import merge_openapi
from services.shared.problems import install_problem_handlers, problem_response
from services.shared.settings import load_settings

API_KEY_HEADER = "x-api-key"
_SPEC_TTL_SECONDS = 30.0


def create_app(
    settings: GatewaySettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the gateway. ``transport`` lets tests put fake upstreams behind it."""
    settings = settings or load_settings(GatewaySettings)
    admin_key = settings.admin_key.get_secret_value().encode() if settings.admin_key else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.upstream_timeout_seconds, connect=2.0)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport) as client:
            app.state.upstreams = {
                "catalog": Upstream("catalog", settings.catalog_url, client),
                "matching": Upstream("matching", settings.matching_url, client),
            }
            yield

    app = FastAPI(
        title="pilotmatch",
        version=__version__,
        description="Matches pilot-test demands (中试需求) with pilot-test platforms (中试平台) "
        "and contract manufacturers (中试代工厂). Every /v1 endpoint needs an `X-API-Key`.",
        lifespan=lifespan,
        openapi_url=None,
    )
    app.state.settings = settings
    spec_cache: dict[str, Any] = {}

    async def readiness() -> str | None:
        upstreams: dict[str, Upstream] = app.state.upstreams
        results = await asyncio.gather(
            *(_probe(u) for u in upstreams.values()), return_exceptions=False
        )
        problems = [r for r in results if r]
        return "; ".join(problems) or None

    app.include_router(health_router("gateway", readiness))
    install_problem_handlers(app)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> Response:
        cached = spec_cache.get("doc")
        if cached and time.monotonic() - cached[0] < _SPEC_TTL_SECONDS:
            return JSONResponse(cached[1])
        try:
            upstream_specs = {
                name: await _fetch_spec(upstream) for name, upstream in app.state.upstreams.items()
            }
        except httpx.HTTPError:
            return problem_response(503, "An upstream service is unavailable; try again shortly.")
        document = public_openapi(app, upstream_specs)
        spec_cache["doc"] = (time.monotonic(), document)
        return JSONResponse(document)

    @app.api_route(
        "/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def proxy(request: Request, path: str) -> Response:
        supplied = request.headers.get(API_KEY_HEADER)
        if not supplied:
            return problem_response(
                401,
                "Send your API key in the X-API-Key header.",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if admin_key is None or not hmac.compare_digest(supplied.encode(), admin_key):
            return problem_response(
                401, "The API key is not valid.", headers={"WWW-Authenticate": "ApiKey"}
            )
        upstream = app.state.upstreams[upstream_for(request.url.path)]
        return await forward(request, upstream)

    app.add_middleware(BodySizeLimitMiddleware, limit_for=lambda _path: settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


def public_openapi(app: FastAPI, upstream_specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The one published document: the gateway's own routes plus every public upstream path."""
    base = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    return merge_openapi(base, upstream_specs)


async def _probe(upstream: Upstream) -> str | None:
    try:
        response = await upstream.client.get(upstream.base_url + "/readyz", timeout=2.0)
    except httpx.HTTPError:
        return f"{upstream.name} unreachable"
    if response.status_code != 200:
        return f"{upstream.name} not ready"
    return None


async def _fetch_spec(upstream: Upstream) -> dict[str, Any]:
    response = await upstream.client.get(upstream.base_url + "/openapi.json", timeout=5.0)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data
