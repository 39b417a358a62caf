"""A small typed client for the catalog's change log: the only way matching learns the catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel


class CatalogChange(BaseModel):
    version: int
    # Any resource name: the catalog may log resources this version of matching does not use
    # (they are skipped), and a new one must not stop the sync.
    resource: str
    id: str
    op: Literal["upsert", "delete"]
    changed_at: datetime
    data: dict[str, Any] | None


class CatalogChangePage(BaseModel):
    items: list[CatalogChange]
    next_after: int
    current_version: int


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

    async def current_version(self) -> int:
        """The catalog's version now (one short read of the change log)."""
        return (await self.changes(after=0, limit=1)).current_version
