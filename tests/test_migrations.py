"""Migrations upgrade, match the models (`alembic check`) and downgrade, on both databases."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

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
