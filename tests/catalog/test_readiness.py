"""Readiness reflects the database: reachable and at the latest migration."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from services.catalog import migrate
from services.catalog.app import create_app
from tests.catalog.conftest import catalog_settings


def test_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(catalog_settings(url))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "pilotmatch migrate" in response.json()["reason"]
        assert client.get("/healthz").status_code == 200
        migrate.upgrade(url)
        assert client.get("/readyz").status_code == 200


def test_unreachable_database_is_not_ready() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    with TestClient(create_app(catalog_settings(url))) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "unreachable" in response.json()["reason"]
