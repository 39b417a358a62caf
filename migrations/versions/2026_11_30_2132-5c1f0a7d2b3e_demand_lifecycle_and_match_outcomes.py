"""Demand lifecycle (status, expires_at, status_changed_at, status_reason) and match outcomes.

Existing demands become open, their status changed at creation and expiring
``DEMAND_LIFETIME_DAYS`` (default 90) after it.

Revision ID: 5c1f0a7d2b3e
Revises: 4b7e2c9a1f3d
Create Date: 2026-11-30 21:30:00.000000
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "5c1f0a7d2b3e"
down_revision: str | None = "4b7e2c9a1f3d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULT_LIFETIME_DAYS = 90
_BATCH = 1000


def _lifetime() -> timedelta:
    # The same setting the catalog reads; a malformed value falls back to the default here
    # (the catalog itself refuses it at start).
    raw = os.environ.get("DEMAND_LIFETIME_DAYS", "")
    days = int(raw) if raw.isdigit() and int(raw) > 0 else _DEFAULT_LIFETIME_DAYS
    return timedelta(days=days)


def _as_utc(value: datetime | str) -> datetime:
    # SQLite hands back text or naive datetimes; both are UTC as the catalog wrote them.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upgrade() -> None:
    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("status_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))

    # Computed here rather than in SQL: date arithmetic differs between SQLite and PostgreSQL.
    demands = sa.table(
        "demands",
        sa.column("pk", sa.BigInteger()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("status", sa.String()),
        sa.column("status_changed_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    lifetime = _lifetime()
    last_pk = 0
    while True:
        rows = bind.execute(
            sa.select(demands.c.pk, demands.c.created_at)
            .where(demands.c.pk > last_pk)
            .order_by(demands.c.pk)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            sa.update(demands)
            .where(demands.c.pk == sa.bindparam("b_pk"))
            .values(
                status="open",
                status_changed_at=sa.bindparam("b_changed"),
                expires_at=sa.bindparam("b_expires"),
            ),
            [
                {
                    "b_pk": pk,
                    "b_changed": _as_utc(created),
                    "b_expires": _as_utc(created) + lifetime,
                }
                for pk, created in rows
            ],
        )
        last_pk = rows[-1][0]

    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column(
            "status_changed_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.create_index(batch_op.f("ix_demands_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_demands_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "match_outcomes",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("demand_id", sa.String(length=40), nullable=False),
        sa.Column("supplier_id", sa.String(length=40), nullable=False),
        sa.Column("supplier_kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when it happened",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when it was recorded",
        ),
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="catalog version of the write"
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_match_outcomes")),
        sa.UniqueConstraint("id", name=op.f("uq_match_outcomes_id")),
    )
    with op.batch_alter_table("match_outcomes", schema=None) as batch_op:
        batch_op.create_index("ix_match_outcomes_demand_id_pk", ["demand_id", "pk"], unique=False)
        batch_op.create_index(
            "ix_match_outcomes_supplier_id_pk", ["supplier_id", "pk"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("match_outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_match_outcomes_supplier_id_pk")
        batch_op.drop_index("ix_match_outcomes_demand_id_pk")
    op.drop_table("match_outcomes")

    with op.batch_alter_table("demands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demands_expires_at"))
        batch_op.drop_index(batch_op.f("ix_demands_status"))
        batch_op.drop_column("expires_at")
        batch_op.drop_column("status_reason")
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("status")
