"""Matching service: ranks platforms and manufacturers for demands, explained in data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client import Histogram

from services import __version__
from services.matching.catalog_client import CatalogClient
from services.matching.index import IndexSyncer, RankingIndex
from services.matching.notifier import NotificationLoop, Notifier
from services.matching.ranking import MatchIndex, SupplierDoc
from services.matching.routes import matching_router
from services.matching.service import MatchingService
from services.matching.settings import MatchingSettings
from services.shared.health import health_router
from services.shared.metrics import LATENCY_BUCKETS, ServiceMetrics
from services.shared.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from services.shared.openapi import install_openapi
from services.shared.problems import install_problem_handlers
from services.shared.settings import load_settings
from services.shared.taxonomy import load_taxonomy

SHUTDOWN_GRACE_SECONDS = 1.0
"""How long shutdown lets the index syncer and the notifier return on their own."""

TAGS = [
    {
        "name": "matching",
        "description": "Ranked platforms and manufacturers for a demand, each with an "
        "explanation in data; suppliers similar to a supplier; the index's state.",
    },
    {
        "name": "reports",
        "description": "The city's coverage and gap report per industry chain and sub-field "
        "(JSON or CSV).",
    },
    {"name": "health", "description": "Liveness and readiness; no API key needed."},
]


def create_app(
    settings: MatchingSettings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the matching app. ``transport`` lets tests put a fake or in-process catalog behind it."""
    settings = settings or load_settings(MatchingSettings)
    taxonomy = load_taxonomy()

    def build(suppliers: Sequence[SupplierDoc]) -> RankingIndex:
        return MatchIndex.build(suppliers, taxonomy)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=2.0), transport=transport
        ) as client:
            catalog = CatalogClient(settings.catalog_url, client)
            syncer = IndexSyncer(
                catalog,
                build,
                poll_interval=settings.poll_interval_seconds,
                rebuild_after_changes=settings.rebuild_after_changes,
            )
            notifications = None
            if settings.notify_enabled:
                notifications = NotificationLoop(
                    Notifier(k=settings.notify_top_k),
                    lambda: syncer.snapshot,
                    catalog,
                    interval=settings.notify_interval_seconds,
                    retry_max=settings.notify_retry_max_seconds,
                    cpu_share=settings.notify_cpu_share,
                )
                syncer.on_changes = notifications.on_changes
            app.state.notifications = notifications
            app.state.matching = MatchingService(
                syncer,
                taxonomy,
                min_version_timeout=settings.min_version_timeout_seconds,
                catalog_version=catalog.current_version,
                on_rank=rank_seconds.observe,
            )
            tasks = {asyncio.create_task(syncer.run(), name="index-sync")}
            if notifications is not None:
                tasks.add(asyncio.create_task(notifications.run(), name="notifier"))
            try:
                yield
            finally:
                syncer.stop()
                if notifications is not None:
                    notifications.stop()
                # A loop asked to stop returns at its next step: a catalog request in flight
                # is let finish, briefly, rather than cut off halfway (an in-process catalog
                # would otherwise leave its database session to the garbage collector).
                _, running = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
                for task in running:
                    task.cancel()
                # Bounded: a refit running in a worker thread cannot be interrupted, and
                # shutdown must not wait for it. A notifier round cut short is redone by the
                # next start: its cursor had not moved.
                if running:
                    await asyncio.wait(running, timeout=5)

    app = FastAPI(
        title="pilotmatch matching",
        version=__version__,
        description="Ranks pilot-test platforms and contract manufacturers for demands.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    metrics = ServiceMetrics("matching")
    rank_seconds = Histogram(
        "pilotmatch_rank_seconds",
        "Time to rank suppliers for one demand (in the index, without HTTP).",
        buckets=LATENCY_BUCKETS,
        registry=metrics.registry,
    )

    def index_state() -> list[tuple[tuple[str], float]]:
        service: MatchingService | None = getattr(app.state, "matching", None)
        if service is None:
            return []
        status = service.status()
        return [
            (("platforms",), float(status.suppliers.platform)),
            (("manufacturers",), float(status.suppliers.manufacturer)),
            (("demands",), float(status.demands)),
            (("version",), float(status.version)),
            (("lag",), float(status.lag)),
        ]

    metrics.gauge_callback(
        "pilotmatch_index",
        "The matching index: suppliers and demands held, catalog version included, and lag "
        "(catalog versions not yet included).",
        ["measure"],
        index_state,
    )

    async def readiness() -> str | None:
        service: MatchingService | None = getattr(app.state, "matching", None)
        if service is None or not service.syncer.ready:
            return "index not built yet (first sync with the catalog pending)"
        return None

    app.include_router(health_router("matching", readiness))
    app.include_router(metrics.router())
    app.include_router(matching_router())
    install_problem_handlers(app)
    install_openapi(app, TAGS)
    app.add_middleware(BodySizeLimitMiddleware, limit_for=lambda _path: 1_048_576)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
