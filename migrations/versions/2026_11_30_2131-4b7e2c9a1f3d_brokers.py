"""Technology brokers (技术经纪人) and the broker assigned to a demand.

Revision ID: 4b7e2c9a1f3d
Revises: 4c1d7a9e2b6f
Create Date: 2026-11-30 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4b7e2c9a1f3d"
down_revision: str | None = "4c1d7a9e2b6f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "brokers",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("industry_chains", _JSON, nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("certification_level", sa.String(length=8), nullable=True),
        sa.Column("work_email", sa.String(length=200), nullable=True),
        sa.Column("work_phone", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="catalog version of the last change"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_brokers")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_brokers_external_ref")),
        sa.UniqueConstraint("id", name=op.f("uq_brokers_id")),
    )
    with op.batch_alter_table("brokers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_brokers_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_brokers_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("broker_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_demands_broker_id"), ["broker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demands_broker_id"))
        batch_op.drop_column("broker_id")

    with op.batch_alter_table("brokers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_brokers_updated_at"))
        batch_op.drop_index(batch_op.f("ix_brokers_district"))

    op.drop_table("brokers")
