"""Liveness and readiness endpoints, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns ``None`` when ready, or a short reason why not."""


class HealthStatus(BaseModel):
    status: str
    service: str
    reason: str | None = None


def health_router(service: str, readiness: ReadinessCheck) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        response_model=HealthStatus,
        operation_id=f"{service}Healthz",
        summary="Liveness: the process is up",
    )
    async def healthz() -> HealthStatus:
        return HealthStatus(status="ok", service=service)

    @router.get(
        "/readyz",
        response_model=HealthStatus,
        operation_id=f"{service}Readyz",
        summary="Readiness: the service can do its work",
        responses={503: {"model": HealthStatus, "description": "Not ready, with the reason"}},
    )
    async def readyz() -> HealthStatus | JSONResponse:
        reason = await readiness()
        if reason is None:
            return HealthStatus(status="ready", service=service)
        body = HealthStatus(status="unavailable", service=service, reason=reason)
        return JSONResponse(body.model_dump(), status_code=503)

    return router
