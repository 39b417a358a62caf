"""Pure ASGI middleware shared by the services: request IDs, access log, body-size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so responses stream through untouched and the hop stays
cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.shared.metrics import ServiceMetrics
from services.shared.problems import PROBLEM_JSON, problem_type
from services.shared.request_context import REQUEST_ID_HEADER, accept_request_id, request_id_var

access_logger = logging.getLogger("pilotmatch.access")

_REQUEST_ID_BYTES = REQUEST_ID_HEADER.lower().encode()


class RequestContextMiddleware:
    """Accept or mint the request ID, put it on the response, log one access line."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_BYTES:
                raw = value.decode("latin-1")
                break
        request_id = accept_request_id(raw)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = [500]
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != _REQUEST_ID_BYTES]
                headers.append((_REQUEST_ID_BYTES, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Handled here rather than by Starlette's outermost error middleware so the 500
            # answer still carries the request ID; the body never holds a stack trace.
            access_logger.getChild("error").exception(
                "unhandled error on %s %s", scope["method"], scope["path"]
            )
            if response_started:
                raise
            await send_problem(
                send_with_id,
                500,
                "Internal server error",
                "An unexpected error occurred; it has been logged with the request ID.",
                request_id,
            )
        finally:
            route = scope.get("route")
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope["method"], scope["path"], status_holder[0], elapsed)
            access_logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status_holder[0],
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": getattr(route, "path", None),
                    "status": status_holder[0],
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


async def send_problem(send: Send, status: int, title: str, detail: str, request_id: str) -> None:
    """Answer with a problem-details body straight from ASGI (no app involved)."""
    body = orjson.dumps(
        {
            "type": problem_type(status),
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": request_id,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (_REQUEST_ID_BYTES, request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimitMiddleware:
    """Refuse request bodies above a per-path limit with a 413 problem, before the app reads them."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        request_id = scope.get("state", {}).get("request_id", "-")
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        too_large = f"The request body exceeds the limit of {limit} bytes for this endpoint."
        if declared is not None:
            if declared > limit:
                await send_problem(send, 413, "Payload too large", too_large, request_id)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): buffer up to the limit, then replay to the app.
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await send_problem(send, 413, "Payload too large", too_large, request_id)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)
