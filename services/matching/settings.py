"""Matching service settings (environment variables, case-insensitive)."""

from __future__ import annotations

from services.shared.settings import ServiceSettings, ServiceUrl


class MatchingSettings(ServiceSettings):
    port: int = 8002
    catalog_url: ServiceUrl = "http://127.0.0.1:8001"
