"""Catalog service: owns platforms, manufacturers, demands, equipment and solutions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy.pool import QueuePool

from services import __version__
from services.catalog import migrate
from services.catalog.db import Database
from services.catalog.delivery import DeliveryWorker
from services.catalog.lifecycle import ExpirySweeper
from services.catalog.pinning import PinnedTransport
from services.catalog.routes import background_units, catalog_router, internal_router
from services.catalog.service import utcnow
from services.catalog.settings import CatalogSettings
from services.catalog.webhooks import RetrySchedule
from services.shared.health import health_router
from services.shared.metrics import ServiceMetrics
from services.shared.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from services.shared.openapi import install_openapi
from services.shared.problems import install_problem_handlers
from services.shared.settings import load_settings

IMPORT_PATH = "/v1/import"

TAGS = [
    {
        "name": "platforms",
        "description": "Pilot-test platforms (中试平台): who offers pilot-test services, for which "
        "industry chains and stages.",
    },
    {
        "name": "manufacturers",
        "description": "Contract manufacturers (中试代工厂), with the same fields as platforms.",
    },
    {
        "name": "demands",
        "description": "Pilot-test demands (中试需求) of enterprises; match them under `matching`.",
    },
    {
        "name": "outcomes",
        "description": "What happened to matches (viewed, contacted, visited, contracted, "
        "completed, declined): per demand and per supplier; they move a demand's status and "
        "feed the ranking.",
    },
    {"name": "equipment", "description": "Pilot-test equipment (中试设备) of a supplier."},
    {"name": "solutions", "description": "Pilot-test solutions (中试解决方案) of a platform."},
    {
        "name": "brokers",
        "description": "Technology brokers (技术经纪人): the industry chains they cover and "
        "their title. A demand can be assigned one (`broker_id`); matches suggest brokers.",
    },
    {
        "name": "import",
        "description": "Bulk upsert of platforms, manufacturers and demands by `external_ref`.",
    },
    {
        "name": "changes",
        "description": "The catalog's change log, in version order: for sync and for reading "
        "your own writes.",
    },
    {
        "name": "industry-chains",
        "description": "The industry-chain taxonomy (产业链) that `industry_chains` resolve to.",
    },
    {
        "name": "webhooks",
        "description": "Endpoints that receive events (`demand.matched`, "
        "`supplier.matches_open_demand`, `catalog.changed`), signed per Standard Webhooks, "
        "with retries, a delivery log and redelivery. Each consumer manages its own.",
    },
    {"name": "admin", "description": "API keys and their scopes (scope `admin`)."},
    {"name": "health", "description": "Liveness and readiness; no API key needed."},
]


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or load_settings(CatalogSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = Database(settings.database_url, settings.db_pool_size)
        sweeper = ExpirySweeper(
            background_units(app.state.db, settings), settings.demand_expiry_sweep_seconds
        )
        app.state.expiry_sweeper = sweeper
        sweeper_task = asyncio.create_task(sweeper.run(), name="demand-expiry-sweeper")
        app.state.expiry_sweeper_task = sweeper_task
        # Where private targets are refused, connections are pinned to the checked address.
        transport = None if settings.webhook_private_targets_allowed else PinnedTransport()
        async with httpx.AsyncClient(follow_redirects=False, transport=transport) as webhook_client:
            worker = DeliveryWorker(
                app.state.db,
                webhook_client,
                RetrySchedule(scale=settings.webhook_retry_scale),
                clock=utcnow,
                poll_interval=settings.webhook_poll_interval_seconds,
                attempt_timeout=settings.webhook_attempt_timeout_seconds,
                allow_private_targets=settings.webhook_private_targets_allowed,
                retention=timedelta(days=settings.webhook_retention_days),
            )
            app.state.delivery_worker = worker
            task = (
                asyncio.create_task(worker.run(), name="webhook-delivery")
                if settings.webhook_delivery_enabled
                else None
            )
            try:
                yield
            finally:
                sweeper.stop()
                worker.stop()
                await sweeper_task
                if task is not None:
                    # Bounded: an attempt still in flight is cut off. Its delivery stays leased
                    # and becomes due again when the lease ends, so stopping loses nothing.
                    await asyncio.wait({task}, timeout=5)
                    task.cancel()
                    await asyncio.wait({task}, timeout=2)
                app.state.db.dispose()

    app = FastAPI(
        title="pilotmatch catalog",
        version=__version__,
        description="Platforms (中试平台), contract manufacturers (中试代工厂), demands (中试需求), "
        "equipment (中试设备) and solutions (中试解决方案).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    metrics = ServiceMetrics("catalog")
    app.state.metrics = metrics

    def pool_use() -> list[tuple[tuple[str], float]]:
        db: Database | None = getattr(app.state, "db", None)
        pool = db.engine.pool if db is not None else None
        if not isinstance(pool, QueuePool):
            return []
        return [(("checked_out",), float(pool.checkedout())), (("idle",), float(pool.checkedin()))]

    metrics.gauge_callback(
        "pilotmatch_db_pool_connections", "Database connections by state.", ["state"], pool_use
    )

    async def readiness() -> str | None:
        return await asyncio.to_thread(_database_ready, app)

    app.include_router(health_router("catalog", readiness))
    app.include_router(metrics.router())
    app.include_router(catalog_router())
    app.include_router(internal_router())
    install_problem_handlers(app)
    install_openapi(app, TAGS)

    def body_limit(path: str) -> int:
        return settings.max_import_body_bytes if path == IMPORT_PATH else settings.max_body_bytes

    app.add_middleware(BodySizeLimitMiddleware, limit_for=body_limit)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def _database_ready(app: FastAPI) -> str | None:
    db: Database = app.state.db
    try:
        current = migrate.current_revision(db.engine)
    except Exception as exc:  # any driver error means "not ready", with the reason
        return f"database unreachable: {type(exc).__name__}"
    head = migrate.head_revision()
    if current != head:
        return (
            f"database schema at {current or 'nothing'}, expected {head}: run `pilotmatch migrate`"
        )
    return None
