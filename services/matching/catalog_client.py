"""A small typed client for the catalog's change log: the only way matching learns the catalog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from services.shared.change_log import CURRENT_VERSION_HEADER, NEXT_AFTER_HEADER


class CatalogChange(BaseModel):
    version: int
    # Any resource name: the catalog adds resources (brokers, match outcomes, …) and a reader
    # keeps the ones it knows and skips the rest, rather than failing on a new name.
    resource: str
    id: str
    op: Literal["upsert", "delete"]
    changed_at: datetime
    data: dict[str, Any] | None


class CatalogChangePage(BaseModel):
    items: list[CatalogChange]
    next_after: int
    current_version: int


@dataclass(frozen=True)
class CursorMove:
    """Move the named cursor from ``expected`` to ``version`` (compare-and-set)."""

    name: str
    expected: int
    version: int


class EventState(BaseModel):
    subscribed_event_types: list[str]
    cursor: int | None = None


class EventsAnswer(BaseModel):
    accepted: bool
    inserted: int
    duplicates: int
    cursor: int | None
    subscribed_event_types: list[str]


class CatalogUnavailable(Exception):
    """The catalog could not be reached or answered with an error."""


class CatalogClient:
    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def changes(self, after: int, limit: int = 1000) -> CatalogChangePage:
        return CatalogChangePage.model_validate_json(
            (await self._changes_response(after, limit)).content
        )

    async def pages(self, after: int, limit: int = 1000) -> AsyncGenerator[CatalogChangePage, None]:
        """The pages of changes after ``after``, until one is empty or reaches the version the
        catalog had when it was read. Use it with ``contextlib.aclosing``.

        While a page is parsed (in a worker thread) and its reader works through it, the next
        one is already being read: the catalog's page headers say where it starts, and the
        catalog is another process, so at start the two costs overlap rather than add up.
        Without the headers (an older catalog) pages are read one after the other."""
        ahead: asyncio.Task[httpx.Response] | None = asyncio.create_task(
            self._changes_response(after, limit)
        )
        try:
            while ahead is not None:
                response = await ahead
                ahead = None
                start = _next_start(response, after)
                if start is not None:
                    ahead = asyncio.create_task(self._changes_response(start, limit))
                page = await asyncio.to_thread(
                    CatalogChangePage.model_validate_json, response.content
                )
                yield page
                if is_last_page(page):
                    return
                if start != page.next_after:  # headers missing or not the body's
                    if ahead is not None:
                        _drop(ahead)
                    ahead = asyncio.create_task(self._changes_response(page.next_after, limit))
                after = page.next_after
        finally:
            if ahead is not None:
                _drop(ahead)

    async def _changes_response(self, after: int, limit: int) -> httpx.Response:
        try:
            response = await self.client.get(
                self.base_url + "/v1/changes", params={"after": after, "limit": limit}
            )
        except httpx.HTTPError as exc:
            raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise CatalogUnavailable(f"catalog answered {response.status_code}")
        return response

    async def event_state(self, cursor_name: str) -> EventState:
        """Which event types have webhooks, and where the named producer's cursor is."""
        response = await self._call(
            "GET", "/internal/events/subscriptions", params={"cursor": cursor_name}
        )
        return EventState.model_validate_json(response.content)

    async def submit_events(
        self, events: list[dict[str, Any]], cursor: CursorMove | None
    ) -> EventsAnswer:
        """Store derived events (once each, by id) and move the producer's cursor with them,
        in one catalog transaction."""
        body: dict[str, Any] = {"events": events}
        if cursor is not None:
            body["cursor"] = {
                "name": cursor.name,
                "expected": cursor.expected,
                "version": cursor.version,
            }
        response = await self._call("POST", "/internal/events", json=body)
        return EventsAnswer.model_validate_json(response.content)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.client.request(method, self.base_url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise CatalogUnavailable(f"catalog answered {response.status_code}")
        return response

    async def current_version(self) -> int:
        """The catalog's version now (one short read of the change log)."""
        return (await self.changes(after=0, limit=1)).current_version


def is_last_page(page: CatalogChangePage) -> bool:
    """Nothing to read after this page: it is empty, or reaches the version the catalog had
    when it was read (later changes are for the next sync)."""
    return not page.items or page.next_after >= page.current_version


def _next_start(response: httpx.Response, after: int) -> int | None:
    """Where the page after this one starts, from its headers; None when there is none to
    read or the headers do not say."""
    try:
        next_after = int(response.headers[NEXT_AFTER_HEADER])
        current = int(response.headers[CURRENT_VERSION_HEADER])
    except (KeyError, ValueError):
        return None
    return next_after if after < next_after < current else None


def _drop(task: asyncio.Task[httpx.Response]) -> None:
    """Cancel a read no longer wanted, and take its outcome so that none is left unretrieved."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
