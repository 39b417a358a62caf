"""Matching service settings (environment variables, case-insensitive)."""

from __future__ import annotations

from pydantic import Field

from services.shared.settings import ServiceSettings, ServiceUrl


class MatchingSettings(ServiceSettings):
    port: int = 8002
    catalog_url: ServiceUrl = "http://127.0.0.1:8001"
    poll_interval_seconds: float = Field(
        default=0.25, gt=0, le=60, description="How often to read the catalog's change log."
    )
    rebuild_after_changes: int = Field(
        default=5000, ge=1, description="Refit the index from scratch after this many changes."
    )
    min_version_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Longest wait for `min_version`."
    )
    notify_enabled: bool = Field(
        default=True,
        description="Compute demand.matched and supplier.matches_open_demand webhook events.",
    )
    notify_top_k: int = Field(
        default=10, ge=1, le=100, description="How many top results per open demand are watched."
    )
    notify_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often the notifier looks for new changes."
    )
    notify_cpu_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Most of the time notifier rounds may spend ranking: after a round that "
        "took T seconds the next waits T·(1−share)/share (at least the interval), so re-ranking "
        "every open demand after supplier changes never crowds out the requests.",
    )
    notify_retry_max_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Longest wait between retries to the catalog."
    )
