"""Matching service. For now it answers health checks; ranking arrives with the matching issue."""

from __future__ import annotations

from fastapi import FastAPI

from services import __version__
from services.matching.settings import MatchingSettings
from services.shared.health import health_router
from services.shared.middleware import RequestContextMiddleware
from services.shared.problems import install_problem_handlers
from services.shared.settings import load_settings


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or load_settings(MatchingSettings)
    app = FastAPI(title="pilotmatch matching", version=__version__)
    app.state.settings = settings

    async def readiness() -> str | None:
        return None

    app.include_router(health_router("matching", readiness))
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    return app
