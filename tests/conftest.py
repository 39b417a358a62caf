"""Test fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

Each backend is migrated once per test session into a template (a file for SQLite, a template
database for PostgreSQL); every test then gets its own copy, so tests never share state and
still run the real Alembic migrations. PostgreSQL must be reachable: a missing server is an
error, never a skip. ``--db sqlite`` or ``--db postgresql`` narrows the run to one backend.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from services.catalog import migrate

BACKENDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("all", *BACKENDS),
        default="all",
        help="Database backends for the database-backed tests (default: all).",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("--db")
    if wanted == "all":
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        (drop if backend is not None and backend != wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresDatabases:
    """Creates and drops per-test databases from one migrated template."""

    def __init__(self, admin_url: str, worker: str) -> None:
        self.admin_url = admin_url
        self.template = f"pilotmatch_tmpl_{worker}_{uuid.uuid4().hex[:8]}"
        try:
            self.conn = psycopg.connect(_psycopg_dsn(admin_url), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL is not reachable at {admin_url} ({exc}). Start it "
                "(pg_ctlcluster <version> main start) or point TEST_POSTGRES_URL at a server.",
                pytrace=False,
            )
        self.conn.execute(f'CREATE DATABASE "{self.template}"')
        migrate.upgrade(self.url_for(self.template))

    def url_for(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def create(self) -> tuple[str, str]:
        name = f"pilotmatch_t_{uuid.uuid4().hex[:12]}"
        self.conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name, self.url_for(name)

    def drop(self, name: str) -> None:
        self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.template)
        self.conn.close()


@pytest.fixture(scope="session")
def worker_id_safe(request: pytest.FixtureRequest) -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_databases(worker_id_safe: str) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(postgres_admin_url(), worker_id_safe)
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A fresh database at the latest migration, on the backend under test."""
    if backend == "sqlite":
        path = tmp_path / "catalog.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name, url = databases.create()
    try:
        yield url
    finally:
        databases.drop(name)


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh SQLite database, for tests that are not about the backend."""
    path = tmp_path / "catalog.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"
