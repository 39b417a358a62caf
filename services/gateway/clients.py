"""The HTTP clients the gateway forwards with: one pooled client per upstream.

``AiohttpClient`` is the production client: on this 2-core machine it forwards several times
more requests per second than ``httpx.AsyncClient`` (see ``bench/gateway.py``). ``HttpxClient``
sends through an ``httpx`` transport: it is the seam tests use to put fake upstreams
(``httpx.MockTransport``) or in-process ASGI apps (``httpx.ASGITransport``) behind the gateway.

Both speak the same small interface and turn their library's failures into the three
``UpstreamError`` kinds below, so the forwarding logic never sees a client library's exceptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

RawHeaders = Sequence[tuple[bytes, bytes]]


class UpstreamError(Exception):
    """The upstream gave no usable answer."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: the request was not sent, so it is safe to send again."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer (or went silent mid-answer) within the route's timeout."""


class UpstreamBroken(UpstreamError):
    """The connection failed after the request went out, or the answer was not valid HTTP."""


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    """Longest wait for the upstream's answer, and then between two chunks of its body."""


class UpstreamResponse(Protocol):
    status: int
    headers: RawHeaders
    content_length: int | None

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


# --- aiohttp (production) -------------------------------------------------------------------


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: RawHeaders = response.raw_headers
        self.content_length = response.content_length

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        # A fully read answer returns its connection to the pool; a half-read one is closed.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class _Sent:
    """Whether a request's headers went out on a connection (filled in by a trace hook)."""

    __slots__ = ("headers",)

    def __init__(self) -> None:
        self.headers = False


async def _mark_headers_sent(
    _session: aiohttp.ClientSession,
    context: SimpleNamespace,
    _params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    context.trace_request_ctx.headers = True


class AiohttpClient:
    """A pooled keep-alive client for one upstream, owned by the gateway's lifespan.

    aiohttp sends an idempotent request a second time, on a new connection, when a kept-alive
    connection breaks under it. If that new connection cannot be made, aiohttp reports a
    connect error although the first copy went out, and the upstream may have acted on it
    (a process killed mid-request). A trace hook notes when headers were sent, so that case is
    a broken answer (502), never "could not connect" (503), which would tell the caller that
    nothing happened and let the gateway send it yet again.
    """

    def __init__(self, max_connections: int = 100, keepalive_seconds: float = 30.0) -> None:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            keepalive_timeout=keepalive_seconds,
            # Short, so a replaced replica's old address is dropped within seconds.
            ttl_dns_cache=10,
        )
        sent_trace = aiohttp.TraceConfig()
        sent_trace.on_request_headers_sent.append(_mark_headers_sent)
        self._session = aiohttp.ClientSession(
            connector=connector,
            trace_configs=[sent_trace],
            # A proxy passes bodies through byte for byte, keeps no cookies between callers,
            # follows no redirects and adds no headers the caller did not send.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    def _client_timeout(self, timeouts: Timeouts) -> aiohttp.ClientTimeout:
        cached = self._timeouts.get(timeouts)
        if cached is None:
            cached = aiohttp.ClientTimeout(
                total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
            )
            self._timeouts[timeouts] = cached
        return cached

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        sent = _Sent()
        try:
            response = await self._session.request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=self._client_timeout(timeouts),
                trace_request_ctx=sent,
            )
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            if sent.headers:
                raise UpstreamBroken(f"{type(exc).__name__} after the request was sent") from exc
            raise UpstreamConnectError(type(exc).__name__) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


# --- httpx transport (tests, in-process stacks) ---------------------------------------------


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: RawHeaders = response.headers.raw
        length = response.headers.get("content-length")
        self.content_length = int(length) if length and length.isdigit() else None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        stream = self._response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            async for chunk in stream:
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except httpx.TransportError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxClient:
    """Sends straight through an ``httpx`` transport: no cookies, no redirects, no added headers."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        request = httpx.Request(
            method,
            url,
            # Header values arrive as latin-1 text of the caller's bytes: send the same bytes
            # (httpx would refuse non-ASCII text).
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            content=body,
            extensions={
                "timeout": {
                    "connect": timeouts.connect,
                    "read": timeouts.read,
                    "write": timeouts.read,
                    "pool": timeouts.connect,
                }
            },
        )
        try:
            async with asyncio.timeout(timeouts.read):
                response = await self._transport.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise UpstreamConnectError(type(exc).__name__) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc
        return _HttpxResponse(response)

    async def aclose(self) -> None:
        """The transport belongs to whoever passed it in; nothing to close here."""
