"""A small typed client for the catalog's change log: the only way matching learns the catalog."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel


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
        try:
            response = await self.client.get(
                self.base_url + "/v1/changes", params={"after": after, "limit": limit}
            )
        except httpx.HTTPError as exc:
            raise CatalogUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise CatalogUnavailable(f"catalog answered {response.status_code}")
        return CatalogChangePage.model_validate_json(response.content)

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
