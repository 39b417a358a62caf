"""Liveness and readiness endpoints, the same on every service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

ReadinessCheck = Callable[[], Awaitable["str | Degraded | None"]]
"""Returns ``None`` when ready, ``Degraded(reason)`` when ready with a remark, or a short reason
why not ready."""


@dataclass(frozen=True)
class Degraded:
    """Ready to serve, but part of the service's world is missing (e.g. one upstream down)."""

    reason: str


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
        if isinstance(reason, Degraded):
            return HealthStatus(status="degraded", service=service, reason=reason.reason)
        body = HealthStatus(status="unavailable", service=service, reason=reason)
        return JSONResponse(body.model_dump(), status_code=503)

    return router
