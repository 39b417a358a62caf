"""The three services wired together in one process, for end-to-end tests through the gateway.

The gateway's HTTP client is given a transport that routes by host to the real catalog and
matching apps (each run through its lifespan), so every request takes the real path: gateway
auth and forwarding, then the service's routes and database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from services.catalog.app import create_app as create_catalog
from services.catalog.settings import CatalogSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.matching.app import create_app as create_matching
from services.matching.settings import MatchingSettings

ADMIN_KEY = "e2e-admin-key-0123456789abcdef"


class HostRouter(httpx.AsyncBaseTransport):
    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[request.url.host].handle_async_request(request)


def build_stack(
    database_url: str,
    min_version_timeout: float = 5.0,
    catalog_settings: dict[str, object] | None = None,
    **gateway_settings: object,
) -> tuple[FastAPI, FastAPI, FastAPI]:
    """(gateway, catalog, matching), wired so the gateway reaches the others in process."""
    catalog = create_catalog(
        CatalogSettings(
            database_url=database_url,
            environment="test",
            **(catalog_settings or {}),  # type: ignore[arg-type]
        )
    )
    to_catalog = httpx.ASGITransport(app=catalog)
    matching = create_matching(
        MatchingSettings(
            environment="test",
            catalog_url="http://catalog",
            poll_interval_seconds=0.05,
            min_version_timeout_seconds=min_version_timeout,
        ),
        transport=HostRouter({"catalog": to_catalog}),
    )
    router = HostRouter({"catalog": to_catalog, "matching": httpx.ASGITransport(app=matching)})
    gateway = create_gateway(
        GatewaySettings(
            environment="test",
            admin_key=ADMIN_KEY,
            catalog_url="http://catalog",
            matching_url="http://matching",
            **gateway_settings,  # type: ignore[arg-type]
        ),
        transport=router,
    )
    return gateway, catalog, matching


@contextmanager
def in_process_stack(
    database_url: str,
    min_version_timeout: float = 5.0,
    catalog_settings: dict[str, object] | None = None,
    **gateway_settings: object,
) -> Iterator[TestClient]:
    gateway, catalog, matching = build_stack(
        database_url, min_version_timeout, catalog_settings, **gateway_settings
    )
    with ExitStack() as stack:
        client = stack.enter_context(TestClient(gateway))
        client.app_state = {}  # type: ignore[attr-defined]
        # All three apps must share one event loop, as they would each in their own process:
        # the matching syncer and the requests that wait on it meet on an asyncio.Condition.
        # So the upstreams' lifespans run in the gateway client's loop (its portal).
        assert client.portal is not None
        for app in (catalog, matching):
            stack.enter_context(
                client.portal.wrap_async_context_manager(app.router.lifespan_context(app))
            )
        client.headers["X-API-Key"] = ADMIN_KEY
        client.app_state.update(catalog=catalog, matching=matching)  # type: ignore[attr-defined]
        yield client


class StackApp:
    """The whole stack as one ASGI app: HTTP goes to the gateway; its lifespan runs all three.

    For serving the stack as one server (``serving``): the event loop that runs the lifespan runs
    every service, as ``in_process_stack`` arranges with its portal.
    """

    def __init__(
        self, database_url: str, min_version_timeout: float = 5.0, **gateway_settings: object
    ) -> None:
        self.apps = build_stack(database_url, min_version_timeout, **gateway_settings)
        self.gateway = self.apps[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.gateway(scope, receive, send)
            return
        async with AsyncExitStack() as running:
            message = await receive()
            assert message["type"] == "lifespan.startup"
            try:
                for app in self.apps:
                    await running.enter_async_context(app.router.lifespan_context(app))
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})


@contextmanager
def serving(app: ASGIApp, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port, in a thread; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="stack-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the stack's server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def call_upstream(client: TestClient, name: str, method: str, path: str) -> httpx.Response:
    """A request straight to the catalog or matching app of the stack (no gateway, no key)."""
    app = client.app_state[name]  # type: ignore[attr-defined]

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as http:
            return await http.request(method, path)

    assert client.portal is not None
    return client.portal.call(call)
