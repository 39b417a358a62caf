"""Migrations upgrade, match the models (`alembic check`) and downgrade, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import MetaData, Table, insert, inspect, select, text

from services.catalog import migrate
from services.catalog.db import create_db_engine


def test_upgrade_check_downgrade_upgrade(database_url: str) -> None:
    # database_url is already at head (from the migrated template).
    config = migrate.alembic_config(database_url)
    command.check(config)  # raises if the models and the migrations disagree
    engine = create_db_engine(database_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM catalog_state")).scalar_one() == 0
        command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(config, "head")
        tables = set(inspect(engine).get_table_names())
        assert {
            "suppliers",
            "demands",
            "equipment",
            "solutions",
            "change_log",
            "catalog_state",
        } <= tables
    finally:
        engine.dispose()


def test_every_revision_downgrades() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrate.migrations_dir()))
    for revision in script.walk_revisions():
        assert revision.module.downgrade.__code__.co_code != (lambda: None).__code__.co_code, (
            f"{revision.revision} has an empty downgrade"
        )


def test_lifecycle_migration_opens_existing_demands_expiring_from_their_creation(
    database_url: str,
) -> None:
    config = migrate.alembic_config(database_url)
    command.downgrade(config, "5c1f0a7d2b3e-1")  # the revision before the lifecycle one
    engine = create_db_engine(database_url)
    created = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    try:
        demands = Table("demands", MetaData(), autoload_with=engine)
        assert "status" not in demands.c
        with engine.begin() as conn:
            conn.execute(
                insert(demands).values(
                    id="dmd_old",
                    external_ref=None,
                    title="旧需求",
                    description="",
                    industry_chains=["新能源"],
                    tags=[],
                    stage=None,
                    district=None,
                    needs_voucher=False,
                    required_certifications=[],
                    version=1,
                    created_at=created,
                    updated_at=created,
                )
            )
        command.upgrade(config, "head")
        demands = Table("demands", MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            status, changed, expires = conn.execute(
                select(demands.c.status, demands.c.status_changed_at, demands.c.expires_at)
            ).one()

        def utc(value: datetime | str) -> datetime:
            value = datetime.fromisoformat(value) if isinstance(value, str) else value
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value

        assert status == "open"
        assert utc(changed) == created
        assert utc(expires) == created + timedelta(days=90)
    finally:
        engine.dispose()
