"""The three services wired together in one process, for end-to-end tests through the gateway.

The gateway's HTTP client is given a transport that routes by host to the real catalog and
matching apps (each run through its lifespan), so every request takes the real path: gateway
auth and forwarding, then the service's routes and database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
from fastapi.testclient import TestClient

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


@contextmanager
def in_process_stack(
    database_url: str, min_version_timeout: float = 5.0, **gateway_settings: object
) -> Iterator[TestClient]:
    catalog = create_catalog(CatalogSettings(database_url=database_url, environment="test"))
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
    with ExitStack() as stack:
        client = stack.enter_context(TestClient(gateway))
        # All three apps must share one event loop, as they would each in their own process:
        # the matching syncer and the requests that wait on it meet on an asyncio.Condition.
        # So the upstreams' lifespans run in the gateway client's loop (its portal).
        assert client.portal is not None
        for app in (catalog, matching):
            stack.enter_context(
                client.portal.wrap_async_context_manager(app.router.lifespan_context(app))
            )
        client.headers["X-API-Key"] = ADMIN_KEY
        yield client
