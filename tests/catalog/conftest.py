from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings


def catalog_settings(database_url: str, **overrides: Any) -> CatalogSettings:
    return CatalogSettings(database_url=database_url, environment="test", **overrides)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """The catalog app on a fresh database, run through its lifespan."""
    with TestClient(create_app(catalog_settings(database_url))) as test_client:
        yield test_client


def platform_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "松山湖固态电池研发中试平台",
        "organization": "松山湖材料实验室",
        "district": "松山湖",
        "description": "固态电池电芯中试：干法电极、叠片、化成分容与安全测试。",
        "industry_chains": ["新能源"],
        "tags": ["固态电池"],
        "capabilities": ["电芯试制"],
        "equipment": ["干法电极辊压机"],
        "certifications": ["CNAS"],
        "stages": ["小试", "中试"],
        "accepts_vouchers": True,
        "level": "省级",
    }
    body.update(overrides)
    return body


def demand_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "固态电池电芯中试放大",
        "description": "需要中试线做10Ah电芯试制。",
        "industry_chains": ["新能源"],
        "tags": ["固态电池"],
        "stage": "中试",
        "district": "松山湖",
        "needs_voucher": True,
        "required_certifications": [],
    }
    body.update(overrides)
    return body
