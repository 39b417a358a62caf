"""Backups: `pilotmatch backup` for SQLite (online, while writes go on) and the documented
PostgreSQL procedure (`pg_dump -Fc`, `pg_restore`), each restored and checked row by row."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.catalog.app import create_app
from services.catalog.backup import PG_DUMP, PG_RESTORE, BackupError, backup_sqlite
from tests.catalog.conftest import catalog_settings, demand_body, platform_body
from tests.conftest import PostgresDatabases, _psycopg_dsn
from tests.test_cli import env, run  # noqa: F401  (env is a fixture)


def _import(client: TestClient, batch: int, size: int) -> dict[str, Any]:
    body = {
        "platforms": [
            platform_body(external_ref=f"b{batch}-p{i}", name=f"平台 {batch}-{i}")
            for i in range(size)
        ],
        "demands": [
            demand_body(external_ref=f"b{batch}-d{i}", title=f"需求 {batch}-{i}")
            for i in range(size)
        ],
    }
    response = client.post("/v1/import", json=body)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _all(client: TestClient, collection: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/v1/{collection}", params=params).json()
        found.update({item["id"]: item for item in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_backup_during_writes_restores_every_row_committed_before_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = create_app(catalog_settings(sqlite_url))
    with TestClient(app) as client:
        for batch in range(3):
            _import(client, batch, 50)
        before_platforms = _all(client, "platforms")
        before_demands = _all(client, "demands")
        version_before = client.get("/v1/changes", params={"limit": 1}).json()["current_version"]

    stop = threading.Event()
    writes: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        # The running service: its own app and engine, importing until told to stop.
        try:
            with TestClient(create_app(catalog_settings(sqlite_url))) as live:
                batch = 100
                while not stop.is_set():
                    writes.append(_import(live, batch, 20)["version"])
                    batch += 1
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=writer, name="importer")
    thread.start()
    try:
        while not writes and thread.is_alive():
            threading.Event().wait(0.01)
        writes_at_start = len(writes)
        result = backup_sqlite(sqlite_url, tmp_path / "backup.db")
        while len(writes) < writes_at_start + 2 and thread.is_alive():
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, failures
    assert writes_at_start >= 1 and len(writes) >= writes_at_start + 2, "no writes overlapped"
    assert result.size_bytes > 0
    assert not (tmp_path / "backup.db.partial").exists()

    restored = create_app(catalog_settings(f"sqlite:///{result.destination}"))
    with TestClient(restored) as client:
        assert client.get("/readyz").status_code == 200
        platforms = _all(client, "platforms")
        demands = _all(client, "demands")
        changes = client.get("/v1/changes", params={"limit": 1}).json()
    for ref, item in before_platforms.items():
        assert platforms[ref] == item
    for ref, item in before_demands.items():
        assert demands[ref] == item
    # One consistent snapshot: the version it reports is one a write answered with (or the
    # version before the writer began), and it holds whole imports only.
    assert changes["current_version"] in {version_before, *writes}
    assert (len(platforms) - len(before_platforms)) % 20 == 0
    assert len(platforms) - len(before_platforms) == len(demands) - len(before_demands)


def test_backup_refuses_to_overwrite_and_needs_a_database(sqlite_url: str, tmp_path: Path) -> None:
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="exists"):
        backup_sqlite(sqlite_url, taken)
    assert taken.read_bytes() == b"keep me"
    with pytest.raises(BackupError, match="no database"):
        backup_sqlite(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "out.db")
    assert not (tmp_path / "missing.db").exists()


def test_backup_command_writes_a_restorable_copy(
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    assert run(["migrate"], env).returncode == 0
    assert run(["load-demo"], env).returncode == 0
    dest = tmp_path / "copy.db"
    result = run(["backup", str(dest)], env)
    assert result.returncode == 0, result.stderr
    assert "backed up" in result.stderr
    again = run(["backup", str(dest)], env)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "exists" in again.stderr
    original_url = env["DATABASE_URL"]
    with (
        TestClient(create_app(catalog_settings(original_url))) as original,
        TestClient(create_app(catalog_settings(f"sqlite:///{dest}"))) as copy,
    ):
        for collection in ("platforms", "manufacturers", "demands", "equipment", "solutions"):
            assert _all(copy, collection) == _all(original, collection), collection


def test_backup_command_refuses_postgresql_naming_pg_dump_and_pg_restore(
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    env["DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:5432/pilotmatch"
    result = run(["backup", str(tmp_path / "x.db")], env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert PG_DUMP in result.stderr and PG_RESTORE in result.stderr
    assert not (tmp_path / "x.db").exists()


COUNTED_TABLES = ("suppliers", "demands", "equipment", "solutions", "change_log", "api_keys")


def _counts(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in COUNTED_TABLES
        }


@pytest.mark.skipif(
    not (shutil.which("pg_dump") and shutil.which("pg_restore")),
    reason="PostgreSQL client tools (pg_dump, pg_restore) are not installed",
)
def test_postgresql_documented_dump_and_restore_keeps_every_row(
    postgres_databases: PostgresDatabases, tmp_path: Path
) -> None:
    name, url = postgres_databases.create()
    restored_name = f"pilotmatch_r_{uuid.uuid4().hex[:12]}"
    try:
        with TestClient(create_app(catalog_settings(url))) as client:
            _import(client, 0, 40)
            supplier = client.post("/v1/platforms", json=platform_body(name="单独平台")).json()
            client.post(
                "/v1/equipment", json={"supplier_id": supplier["id"], "name": "扫描电镜"}
            ).raise_for_status()
            client.post("/v1/admin/keys", json={"label": "备份测试", "scopes": ["catalog:read"]})
            originals = {c: _all(client, c) for c in ("platforms", "demands", "equipment")}
        dump = tmp_path / "pilotmatch.dump"
        source_dsn = _psycopg_dsn(url)
        # The README's commands, with this server's address.
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", source_dsn], check=True, timeout=120
        )
        postgres_databases.conn.execute(f'CREATE DATABASE "{restored_name}"')
        restored_url = postgres_databases.url_for(restored_name)
        restored_dsn = _psycopg_dsn(restored_url)
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={restored_dsn}", str(dump)],
            check=True,
            timeout=120,
        )
        assert _counts(restored_dsn) == _counts(source_dsn)
        assert _counts(restored_dsn)["suppliers"] == 41
        with TestClient(create_app(catalog_settings(restored_url))) as client:
            assert client.get("/readyz").status_code == 200
            for collection, items in originals.items():
                assert _all(client, collection) == items
            # Writes go on after a restore: the version sequence continues.
            created = client.post("/v1/demands", json=demand_body(title="恢复后新需求"))
            assert created.status_code == 201, created.text
    finally:
        postgres_databases.drop(restored_name)
        postgres_databases.drop(name)
