"""Demands record their owner (the consumer whose key created them); external_ref is unique
per owner; the change log carries a demand's owner so it can be filtered per consumer.

Existing demands and change-log entries get no owner: only admin keys (and the services
themselves) see them. Downgrading restores one global external_ref namespace, so it fails
if two owners have come to use the same external_ref.

Revision ID: 4c1d7a9e2b6f
Revises: 9e229aeabfe8
Create Date: 2026-11-30 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c1d7a9e2b6f"
down_revision: str | None = "9e229aeabfe8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNOWNED = sa.text("owner_consumer_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "owner_consumer_id",
                sa.String(length=200),
                nullable=True,
                comment="consumer whose key created it; null: created from inside",
            )
        )
        batch_op.drop_constraint(batch_op.f("uq_demands_external_ref"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_demands_owner_consumer_id_external_ref"),
            ["owner_consumer_id", "external_ref"],
        )
    # Outside the batch: SQLite's table copy would not carry the partial index's WHERE.
    op.create_index(
        "uq_demands_external_ref_unowned",
        "demands",
        ["external_ref"],
        unique=True,
        sqlite_where=_UNOWNED,
        postgresql_where=_UNOWNED,
    )
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_consumer_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_column("owner_consumer_id")
    op.drop_index("uq_demands_external_ref_unowned", table_name="demands")
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_demands_owner_consumer_id_external_ref"), type_="unique"
        )
        batch_op.create_unique_constraint(batch_op.f("uq_demands_external_ref"), ["external_ref"])
        batch_op.drop_column("owner_consumer_id")
