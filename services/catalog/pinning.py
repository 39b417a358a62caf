"""Webhook connections pinned to the address that was checked: no DNS rebinding.

Checking a webhook's host before sending (``webhooks.refused_target``) and then letting the
HTTP client resolve the name again leaves a window: a hostile DNS server answers the check
with a public address and the connection with 127.0.0.1 or 169.254.169.254. Here the name is
resolved once, inside the connection itself: ``PinnedBackend.connect_tcp`` resolves, refuses
a private, loopback, link-local or reserved answer, and opens the socket to the very address
it checked. TLS and the ``Host`` header still use the name (httpcore takes them from the URL,
not from the socket), so certificates are verified as usual.

httpx has no public parameter for its network backend, so ``PinnedTransport`` rebuilds its
connection pool (httpx's own defaults) with this backend; ``tests/catalog/test_pinning.py``
fails if a new httpx stops honouring it. The sender connects directly: proxy variables in the
environment are ignored, since a proxy would resolve the name itself.
"""

from __future__ import annotations

import typing

import anyio
import httpcore
import httpx

from services.catalog.webhooks import Resolver, checked_addresses, resolve_host

__all__ = ["PinnedBackend", "PinnedTransport"]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to an address of the host only after checking it, and only to that one."""

    def __init__(
        self,
        resolve: Resolver = resolve_host,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolve = resolve
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await anyio.to_thread.run_sync(self._address, host)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    def _address(self, host: str) -> str:
        addresses, refused = checked_addresses(host, self._resolve)
        if refused is not None:
            raise httpcore.ConnectError(f"refused target: {refused}")
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        return addresses[0].split("%", 1)[0]

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with connections opened by ``PinnedBackend``."""

    def __init__(
        self,
        resolve: Resolver = resolve_host,
        *,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=5.0,
            network_backend=backend if backend is not None else PinnedBackend(resolve),
        )
