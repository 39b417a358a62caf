"""Gateway: the only public door. Checks the API key and forwards /v1/* to the right service.

Each upstream gets its own pooled client (aiohttp in production; an ``httpx`` transport when tests
pass one) and its own circuit breaker, created in the lifespan and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import Counter
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from services import __version__
from services.gateway.auth import (
    Authenticator,
    Principal,
    Verification,
    VerifierUnavailable,
    required_scope,
)
from services.gateway.circuit import CircuitBreaker
from services.gateway.clients import (
    AiohttpClient,
    HttpxClient,
    Timeouts,
    UpstreamClient,
    UpstreamError,
)
from services.gateway.rate_limit import (
    MemoryRateLimiter,
    Quota,
    RateLimiter,
    RedisRateLimiter,
    charged,
)
from services.gateway.security_headers import SecurityHeadersMiddleware
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import (
    ProxiedResponse,
    RouteTimeouts,
    Upstream,
    costly_route,
    fetch,
    forward,
    upstream_for,
)
from services.shared.caller import CONSUMER_HEADER, SCOPES_HEADER
from services.shared.health import Degraded, health_router
from services.shared.metrics import ServiceMetrics
from services.shared.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from services.shared.openapi import merge_openapi
from services.shared.problems import install_problem_handlers, problem_response
from services.shared.settings import load_settings

API_KEY_HEADER = "x-api-key"
API_KEY_HEADER_BYTES = API_KEY_HEADER.encode()
_SPEC_TTL_SECONDS = 30.0
# What a browser on an allowed origin may send and read (CORS).
CORS_ALLOW_HEADERS = ["X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-ID", "traceparent"]
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "Location"]
DESCRIPTION = """\
Matches pilot-test demands (中试需求) with pilot-test platforms (中试平台) and contract
manufacturers (中试代工厂).

- Every `/v1` operation needs an API key in the `X-API-Key` header, with the scope the operation
  names (`x-required-scope`, and in its security requirement); see the `ApiKeyAuth` scheme.
- Every error is an RFC 9457 problem (`application/problem+json`): `type`, `title`, `status`,
  `detail`, and for validation errors `errors`, every field at fault.
- Every response carries `X-Request-ID` (echoed when the caller sends one).
- Every write answers with `version`, the catalog's change sequence number after it; pass it as
  `min_version` to a matching operation to read your own writes.
"""
TAGS = [{"name": "health", "description": "Liveness and readiness; no API key needed."}]


def create_app(
    settings: GatewaySettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the gateway. ``transport`` lets tests put fake upstreams behind it."""
    settings = settings or load_settings(GatewaySettings)
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None

    connect = settings.upstream_connect_timeout_seconds
    route_timeouts = RouteTimeouts(
        default=Timeouts(connect, settings.upstream_timeout_seconds),
        import_=Timeouts(connect, settings.import_timeout_seconds),
        matching=Timeouts(connect, settings.matching_timeout_seconds),
        report=Timeouts(connect, settings.report_timeout_seconds),
    )

    def new_client() -> UpstreamClient:
        if transport is not None:
            return HttpxClient(transport)
        return AiohttpClient(max_connections=settings.upstream_max_connections)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstreams = {
            name: Upstream(
                name,
                base_url,
                new_client(),
                CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_reset_seconds),
                retries=settings.upstream_retries,
                backoff_seconds=settings.upstream_retry_backoff_seconds,
            )
            for name, base_url in (
                ("catalog", settings.catalog_url),
                ("matching", settings.matching_url),
            )
        }
        app.state.upstreams = upstreams
        app.state.authenticator = Authenticator(
            admin_key, _catalog_verifier(upstreams["catalog"]), ttl=settings.key_cache_seconds
        )
        limiter: RateLimiter = (
            RedisRateLimiter(settings.redis_url) if settings.redis_url else MemoryRateLimiter()
        )
        app.state.rate_limiter = limiter
        if settings.environment != "test":
            # Everything built so far lives as long as the process: move it out of the cyclic
            # collector's sight, so a full collection under load does not walk the whole heap
            # (a 50-100 ms pause without this; see bench/gateway.py). Tests skip it.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            for upstream in upstreams.values():
                await upstream.client.aclose()
            await limiter.aclose()

    app = FastAPI(
        title="pilotmatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # The gateway serves the merged document (and the docs pages) itself, below.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    metrics = ServiceMetrics("gateway")
    app.state.metrics = metrics
    rejections = Counter(
        "pilotmatch_rate_limit_rejections",
        "Requests refused with 429, by consumer.",
        ["consumer"],
        registry=metrics.registry,
    )
    upstream_errors = Counter(
        "pilotmatch_upstream_errors",
        "Answers the gateway made itself because an upstream failed, by upstream and status.",
        ["upstream", "status"],
        registry=metrics.registry,
    )
    spec_cache: dict[str, Any] = {}

    async def readiness() -> str | Degraded | None:
        # Ready while any upstream answers: with the catalog down the gateway still serves
        # matches from the last index, so taking it out of rotation would only cost answers.
        upstreams: dict[str, Upstream] = app.state.upstreams
        results = await asyncio.gather(
            *(_probe(u) for u in upstreams.values()), return_exceptions=False
        )
        problems = [r for r in results if r]
        if not problems:
            return None
        if len(problems) < len(results):
            return Degraded("; ".join(problems))
        return "; ".join(problems)

    app.include_router(health_router("gateway", readiness))
    app.include_router(metrics.router())
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
        except (UpstreamError, ValueError):
            return problem_response(503, "An upstream service is unavailable; try again shortly.")
        try:
            document = public_openapi(app, upstream_specs)
        except ValueError:
            # The services disagree (e.g. mid-deploy): no document rather than a wrong one.
            return problem_response(503, "The services' API documents do not fit together yet.")
        spec_cache["doc"] = (time.monotonic(), document)
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=request.scope.get("root_path", "") + "/openapi.json",
            title=f"{app.title} — API docs",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=request.scope.get("root_path", "") + "/openapi.json",
            title=f"{app.title} — API reference",
        )

    def quota_for(principal: Principal) -> Quota:
        rate = principal.rate_limit_per_minute or settings.rate_limit_per_minute
        burst = max(1, math.ceil(rate * settings.rate_limit_burst_seconds / 60))
        return Quota(rate, burst)

    costs = {"import": settings.rate_limit_import_cost, "match": settings.rate_limit_match_cost}

    def cost_of(path: str) -> int:
        """Tokens a request spends: imports and rankings cost more than a plain read."""
        kind = costly_route(path)
        return 1 if kind is None else costs[kind]

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        """``/v1/*``: authenticate, authorise, rate-limit, then forward.

        Plain ASGI: the hop skips FastAPI's routing.
        """
        if not is_canonical_path(scope["path"]):
            # The scope is decided on this path, but an HTTP client on the hop may resolve
            # `..` (`/v1/platforms/../admin/keys` is `/v1/admin/keys` to it): never forward one.
            refusal = problem_response(
                400,
                "The path must not contain '.' or '..' segments or empty segments "
                "(encoded or not).",
            )
            await refusal(scope, receive, send)
            return
        principal_or_refusal = await _admit(scope, app.state.authenticator)
        if isinstance(principal_or_refusal, Response):
            await principal_or_refusal(scope, receive, send)
            return
        principal = principal_or_refusal
        limit_headers: list[tuple[bytes, bytes]] = []
        if not principal.is_bootstrap_admin:
            quota = quota_for(principal)
            cost = charged(quota, cost_of(scope["path"]))
            decision = await app.state.rate_limiter.hit(principal.key_id, quota, cost)
            limit_headers = [
                (k.lower().encode(), v.encode()) for k, v in decision.headers().items()
            ]
            if not decision.allowed:
                rejections.labels(principal.consumer_id).inc()
                costs_more = f" (this request counts as {cost})" if cost > 1 else ""
                refusal = problem_response(
                    429,
                    f"Rate limit of {decision.limit} requests in a burst exceeded{costs_more}; "
                    "retry after the time in Retry-After.",
                    headers=decision.headers(),
                )
                await refusal(scope, receive, send)
                return
        path: str = scope["path"]
        upstream = app.state.upstreams[upstream_for(path)]
        response = await forward(
            scope,
            receive,
            upstream,
            route_timeouts.for_path(path),
            extra_headers=[
                (CONSUMER_HEADER, principal.consumer_id),
                (SCOPES_HEADER, " ".join(sorted(principal.scopes))),
            ],
        )
        if not isinstance(response, ProxiedResponse) and response.status_code in (502, 503, 504):
            upstream_errors.labels(upstream.name, str(response.status_code)).inc()
        response.raw_headers.extend(limit_headers)
        await response(scope, receive, send)

    # First in the routing table: the hop is the hot path.
    app.router.routes.insert(0, Mount("/v1", app=proxy, name="v1"))

    # Outermost last: request ID first, so every answer (CORS preflights and 413s too) has one.
    app.add_middleware(BodySizeLimitMiddleware, limit_for=lambda _path: settings.max_body_bytes)
    if settings.cors_allow_origins:
        # Preflights are answered here, before any route: they need no API key.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def is_canonical_path(path: str) -> bool:
    """Whether a (percent-decoded) path has no ``.``, ``..`` or empty inner segments."""
    segments = path.split("/")[1:]
    inner = segments[:-1]  # a trailing slash is the service's to answer (404)
    return not any(s in (".", "..") for s in segments) and all(inner)


async def _admit(scope: Scope, authenticator: Authenticator) -> Principal | Response:
    """The caller, or the answer for a request the gateway will not forward."""
    # Every method is forwarded: only the service that owns a path knows which methods it allows,
    # so it answers 405 with the right `Allow`.
    method: str = scope["method"]
    supplied = next((v for k, v in scope["headers"] if k == API_KEY_HEADER_BYTES), None)
    if not supplied:
        return problem_response(
            401,
            "Send your API key in the X-API-Key header.",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    try:
        verification = await authenticator.authenticate(supplied.decode("latin-1"))
    except VerifierUnavailable:
        return problem_response(
            503,
            "The API key cannot be checked right now (the catalog is unavailable).",
            headers={"Retry-After": "5"},
        )
    if not verification.valid or verification.principal is None:
        detail = {
            "revoked": "The API key has been revoked.",
            "expired": "The API key has expired.",
        }.get(verification.reason or "", "The API key is not valid.")
        return problem_response(401, detail, headers={"WWW-Authenticate": "ApiKey"})
    principal = verification.principal
    needed = required_scope(method, scope["path"])
    if needed not in principal.scopes:
        return problem_response(
            403,
            f"This API key lacks the scope '{needed}' that {method} {scope['path']} needs.",
            extra={"required_scope": needed},
        )
    return principal


def _catalog_verifier(catalog: Upstream) -> Callable[[str], Awaitable[Verification]]:
    async def verify(key: str) -> Verification:
        try:
            status, body = await fetch(
                catalog,
                "/internal/keys/verify",
                timeout=3.0,
                method="POST",
                json_body=orjson.dumps({"key": key}),
            )
        except UpstreamError as exc:
            raise VerifierUnavailable(str(exc)) from exc
        if status == 422:
            return Verification(False, reason="malformed")
        if status != 200:
            raise VerifierUnavailable(f"catalog answered {status}")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise VerifierUnavailable("catalog sent a broken key verification") from exc
        if not data.get("valid"):
            return Verification(False, reason=data.get("reason"))
        return Verification(
            True,
            principal=Principal(
                key_id=data["key_id"],
                consumer_id=data["consumer_id"],
                scopes=frozenset(data["scopes"]),
                rate_limit_per_minute=data.get("rate_limit_per_minute"),
            ),
        )

    return verify


def public_openapi(app: FastAPI, upstream_specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The one published document: the gateway's own routes plus every public upstream path."""
    base = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
    )
    return merge_openapi(base, upstream_specs, scope_for=required_scope)


async def _probe(upstream: Upstream) -> str | None:
    try:
        status, _ = await fetch(upstream, "/readyz", timeout=2.0)
    except UpstreamError:
        return f"{upstream.name} unreachable"
    if status != 200:
        return f"{upstream.name} not ready"
    return None


async def _fetch_spec(upstream: Upstream) -> dict[str, Any]:
    status, body = await fetch(upstream, "/openapi.json", timeout=5.0)
    if status != 200:
        raise UpstreamError(f"{upstream.name} answered {status} for its OpenAPI document")
    data: dict[str, Any] = orjson.loads(body)
    return data
