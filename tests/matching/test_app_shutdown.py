"""Matching's shutdown lets a catalog request in flight finish instead of cutting it off."""

from __future__ import annotations

import asyncio
import threading

import httpx
from fastapi.testclient import TestClient

from services.matching.app import SHUTDOWN_GRACE_SECONDS, create_app
from services.matching.settings import MatchingSettings

EMPTY_PAGE = {"items": [], "next_after": 0, "current_version": 0}


class SlowCatalog(httpx.AsyncBaseTransport):
    """Answers the changes feed; once the index is ready, each answer takes ``delay`` s.
    Records whether each slow answer was finished or cancelled."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self.in_flight = threading.Event()
        self.finished = 0
        self.cancelled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/changes", request.url
        self.calls += 1
        if self.calls > 2:  # the first sync (and readiness) answer at once
            self.in_flight.set()
            try:
                await asyncio.sleep(self.delay)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            self.finished += 1
        return httpx.Response(200, json=EMPTY_PAGE)


def _app(catalog: SlowCatalog) -> TestClient:
    settings = MatchingSettings(
        environment="test",
        catalog_url="http://catalog",
        poll_interval_seconds=0.01,
        notify_enabled=False,
    )
    return TestClient(create_app(settings, transport=catalog))


def test_shutdown_lets_the_catalog_request_in_flight_finish() -> None:
    catalog = SlowCatalog(delay=SHUTDOWN_GRACE_SECONDS / 4)
    with _app(catalog):
        assert catalog.in_flight.wait(10)
    assert catalog.finished >= 1 and catalog.cancelled == 0


def test_shutdown_cuts_off_a_request_longer_than_the_grace() -> None:
    catalog = SlowCatalog(delay=60.0)
    with _app(catalog):
        assert catalog.in_flight.wait(10)
    assert catalog.cancelled == 1 and catalog.finished == 0
