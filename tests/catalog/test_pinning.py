"""Webhook connections are pinned to the address that was checked (no DNS rebinding)."""

from __future__ import annotations

import asyncio
import typing

import httpcore
import httpx
import pytest

from services.catalog.pinning import PinnedBackend, PinnedTransport
from tests.webhook_receiver import Receiver

PUBLIC = "93.184.216.34"
OK = [b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"]


class RecordingBackend(httpcore.AsyncMockBackend):
    """Answers every connection with a canned response and records where it was opened."""

    def __init__(self) -> None:
        super().__init__(OK * 4)
        self.hosts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)


def _post(transport: httpx.AsyncBaseTransport, url: str) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
            return await client.post(url, content=b"{}")

    return asyncio.run(send())


def test_the_socket_goes_to_the_address_that_was_checked_while_the_url_keeps_the_name() -> None:
    inner = RecordingBackend()
    lookups: list[str] = []

    def resolve(host: str) -> list[str]:
        lookups.append(host)
        return [PUBLIC]

    transport = PinnedTransport(backend=PinnedBackend(resolve, inner))
    response = _post(transport, "http://hooks.example.test:8080/in")
    assert response.status_code == 204
    assert inner.hosts == [PUBLIC]  # never the name: nothing is left to resolve it again
    assert lookups == ["hooks.example.test"]  # resolved once, by the check itself
    assert response.request.headers["host"] == "hooks.example.test:8080"


@pytest.mark.parametrize(
    "answers",
    [["127.0.0.1"], ["169.254.169.254"], ["10.0.0.7"], [PUBLIC, "192.168.1.2"], ["::1"]],
)
def test_a_name_answering_with_a_private_address_is_never_connected(answers: list[str]) -> None:
    inner = RecordingBackend()
    transport = PinnedTransport(backend=PinnedBackend(lambda _h: answers, inner))
    with pytest.raises(httpx.ConnectError, match="refused target"):
        _post(transport, "http://rebind.example.test/in")
    assert inner.hosts == []


def test_literal_private_addresses_and_unresolvable_names_are_refused() -> None:
    inner = RecordingBackend()
    transport = PinnedTransport(backend=PinnedBackend(lambda _h: [], inner))
    with pytest.raises(httpx.ConnectError, match="refused target"):
        _post(transport, "http://127.0.0.1:9/in")
    with pytest.raises(httpx.ConnectError, match="refused target"):
        _post(transport, "http://[::1]:9/in")
    with pytest.raises(httpx.ConnectError, match="does not resolve"):
        _post(transport, "http://nowhere.example.test/in")
    assert inner.hosts == []


def test_a_rebinding_name_cannot_reach_a_local_receiver() -> None:
    # A hostile DNS server answers the first lookup (what the check before sending sees) with
    # a public address and every later one with loopback, where a receiver listens. The pinned
    # sender resolves once more, inside the connection, and refuses what it gets.
    answers = [[PUBLIC]]

    def rebinding(_host: str) -> list[str]:
        return answers.pop(0) if answers else ["127.0.0.1"]

    assert rebinding("hooks.example.test") == [PUBLIC]  # the check before sending passed
    receiver = Receiver().start()
    try:
        port = receiver.url.split(":")[2].split("/")[0]
        reachable = _post(httpx.AsyncHTTPTransport(), receiver.url)
        assert reachable.status_code == 200 and len(receiver.requests) == 1  # it listens
        with pytest.raises(httpx.ConnectError, match="refused target"):
            _post(PinnedTransport(resolve=rebinding), f"http://rebind.example.test:{port}/hooks")
        assert len(receiver.requests) == 1  # nothing more arrived
    finally:
        receiver.stop()
