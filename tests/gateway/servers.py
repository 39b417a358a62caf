"""Real servers on loopback for the gateway's production path (aiohttp to uvicorn).

``serve(app)`` runs any ASGI app under uvicorn in a background thread on a free 127.0.0.1 port,
so tests can put the gateway and a scripted upstream on real sockets. ``scripted_upstream()``
builds an upstream that records what reached it and answers as each test needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """``app`` under uvicorn on loopback, for the duration of the block; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Seen:
    """What one request looked like when it reached the upstream."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body_size: int
    body_sha256: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)


@dataclass
class Upstream:
    seen: list[Seen] = field(default_factory=list)
    # Set by a test once the client has the first chunk of /v1/big; the upstream waits for it.
    first_chunk_received: threading.Event = field(default_factory=threading.Event)
    big_chunk: bytes = b"0123456789abcdef" * 4096  # 64 KiB
    big_chunks: int = 128  # 8 MiB in all

    def app(self) -> Starlette:
        async def record(request: Request) -> Seen:
            digest = hashlib.sha256()
            size = 0
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
            seen = Seen(
                request.method,
                request.url.path,
                request.url.query,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                size,
                digest.hexdigest(),
            )
            self.seen.append(seen)
            return seen

        async def echo(request: Request) -> Response:
            seen = await record(request)
            return JSONResponse(
                {"path": seen.path, "size": seen.body_size, "sha256": seen.body_sha256},
                headers={
                    "Connection": "X-Upstream-Hop",
                    "X-Upstream-Hop": "secret",
                    "Keep-Alive": "timeout=5",
                    "Proxy-Authenticate": "Basic",
                    "X-Kept": "yes",
                },
            )

        async def slow(request: Request) -> Response:
            await record(request)
            await asyncio.sleep(float(request.query_params.get("seconds", "2")))
            return JSONResponse({"slow": True})

        async def big(request: Request) -> Response:
            await record(request)

            async def body() -> AsyncIterator[bytes]:
                yield self.big_chunk
                # Hold the rest back until the client has the first chunk: a gateway that
                # buffered whole answers would never deliver it, and this wait would time out.
                await asyncio.to_thread(self.first_chunk_received.wait, 10)
                for _ in range(self.big_chunks - 1):
                    yield self.big_chunk

            return StreamingResponse(body(), media_type="application/octet-stream")

        async def ready(request: Request) -> Response:
            return JSONResponse({"status": "ready"})

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[
                Route("/v1/echo", echo, methods=methods),
                Route("/v1/import", slow, methods=methods),
                Route("/v1/reports/coverage", slow, methods=methods),
                Route("/v1/match", slow, methods=methods),
                Route("/v1/slow", slow, methods=methods),
                Route("/v1/big", big, methods=methods),
                Route("/readyz", ready),
            ]
        )
